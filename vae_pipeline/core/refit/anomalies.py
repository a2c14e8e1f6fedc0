"""The anomaly stage: how badly the day's VAE reconstructs each stock, the flags, and whether
the flags of an earlier decision date were followed by idiosyncratic drawdowns.

Three steps, each usable alone:

- :func:`model_errors` -- per-stock reconstruction error and trailing residual vol;
- :func:`evaluate_flags` -- the errors of a decision date's model on its own window tested
  against the market-residual drawdowns of the days held after it (:func:`anomaly_test`);
- :func:`evaluate_anomalies` -- both for one day: today's errors and flags, and the test of
  the flags made H days earlier, as one per-stock frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from vae_pipeline.core.anomaly import (
    SURPRISE_DAYS,
    anomaly_test,
    flag_anomalies,
    market_residual_returns,
    max_drawdown,
    reconstruction_error,
    standardised_surprise,
)
from vae_pipeline.core.results import AnomalyTest
from vae_pipeline.core.training import TrainResult

# The per-stock columns of :class:`AnomalyReport` (index: ticker), in the asset's order.
ANOMALY_REPORT_COLUMNS = [
    "recon_error",
    "flagged",
    "idio_vol",
    "planted",
    "decision_date",
    "decision_error",
    "decision_flagged",
    "later_drawdown",
    "surprise",
    "decision_surprise",
]
EVALUATION_COLUMNS = ["decision_error", "decision_flagged", "later_drawdown", "decision_surprise"]
BetaDays = Literal["span", "held"]
VolBetaDays = Literal["window", "span"]


def reconstruction_errors(model: TrainResult, window: pd.DataFrame) -> pd.Series:
    """Per-stock mean squared reconstruction error of ``model`` on ``window``, in standardised
    units (the model's own standardiser, so a volatile name is not flagged for its vol alone),
    over the names the model was trained on, in its order."""
    if model.standardiser.columns_ is not None:
        window = window[list(model.standardiser.columns_)]
    z = model.standardiser.transform(window)
    z_hat = model.standardiser.transform(model.reconstruct(window))
    return reconstruction_error(pd.DataFrame(z, columns=window.columns), z_hat)


def standardised_residuals(model: TrainResult, window: pd.DataFrame) -> pd.DataFrame:
    """``z - z_hat`` (days x names): the model's daily reconstruction residuals on ``window``
    in its own standardised units, over the names it was trained on, in its order."""
    if model.standardiser.columns_ is not None:
        window = window[list(model.standardiser.columns_)]
    z = model.standardiser.transform(window)
    z_hat = model.standardiser.transform(model.reconstruct(window))
    return pd.DataFrame(
        np.asarray(z, dtype=float) - np.asarray(z_hat, dtype=float),
        index=window.index,
        columns=window.columns,
    )


def noise_variances(model: TrainResult, residuals: pd.DataFrame) -> pd.Series:
    """Each name's noise variance in standardised units: the model's learned ``psi``
    (``noise="learned"``, the headline VAE); for a fixed-noise model, which has no per-stock
    noise, the mean square of the name's ``residuals`` over the window (its empirical level)."""
    log_psi = model.model.noise_logvar()
    if log_psi is not None:
        psi = np.exp(log_psi.detach().double().cpu().numpy())
    else:
        psi = np.mean(residuals.to_numpy(dtype=float) ** 2, axis=0)
    return pd.Series(psi, index=residuals.columns, name="noise_var")


def surprises(
    model: TrainResult, window: pd.DataFrame, recent_days: int = SURPRISE_DAYS
) -> pd.Series:
    """The standardised surprise (:func:`standardised_surprise`) of each name: its mean squared
    residual over the window's last ``recent_days`` in units of its own noise variance
    (:func:`noise_variances`). Scale-free, so a volatile name is not flagged for its vol."""
    resid = standardised_residuals(model, window)
    # a window shorter than twice the period (a tiny test window) scores its last half
    recent_days = min(recent_days, max(1, len(resid) // 2))
    return standardised_surprise(resid, noise_variances(model, resid), recent_days)


def model_errors(model: TrainResult, window: pd.DataFrame, market: pd.Series) -> pd.DataFrame:
    """Per-stock reconstruction error (:func:`reconstruction_errors`) and trailing annualised
    market-residual vol (the rival predictor of drawdowns)."""
    if model.standardiser.columns_ is not None:
        window = window[list(model.standardiser.columns_)]
    errors = reconstruction_errors(model, window)
    resid = market_residual_returns(window, market.reindex(window.index))
    return pd.DataFrame({"recon_error": errors, "idio_vol": resid.std() * np.sqrt(252.0)})


def flagged_errors(model: TrainResult, window: pd.DataFrame, market: pd.Series) -> pd.DataFrame:
    """:func:`model_errors` with the ``flagged`` column (the top reconstruction errors)."""
    report = model_errors(model, window, market)
    report["flagged"] = flag_anomalies(report["recon_error"])
    return report


@dataclass(frozen=True)
class FlagEvaluation:
    """The flags of a decision date against what followed.

    ``frame`` (index: ticker, the names of the decision window): ``decision_error`` (the
    decision model's reconstruction error on its window), ``decision_flagged`` (1.0 for the
    top 20 %, else 0.0), ``later_drawdown`` (worst market-residual drawdown over the held
    days, NaN for a name missing a held day) and ``decision_surprise`` (:func:`surprises` on
    the decision window). ``test`` is :func:`anomaly_test`: naive high-vs-low drawdowns and
    the partial rank correlation given trailing residual vol, of the error, and in its
    ``surprise_*`` fields the same test of the surprise.
    """

    decision_date: pd.Timestamp
    frame: pd.DataFrame
    test: AnomalyTest


def evaluate_flags(
    model: TrainResult,
    window: pd.DataFrame,
    held_returns: pd.DataFrame,
    market: pd.Series,
    planted: pd.Series | None = None,
    seed: int = 42,
    beta_days: BetaDays = "span",
    vol_beta_days: VolBetaDays = "window",
    surprise_model: TrainResult | None = None,
) -> FlagEvaluation:
    """Did the names the decision date's model reconstructed worst draw down more afterwards?

    ``window``: the decision date's training window (wide, the date last); ``held_returns``:
    the days held after it, (d-H, d]. Errors are the model's on its own window, so nothing
    after the decision date leaks into the flags. A name missing a held day drops out of the
    test (its drawdown would be over a shorter path).

    ``beta_days`` -- the days the market beta of the held-day residuals is fitted on:
    ``"span"`` (window + held days; the daily evaluation, where H = 21 days are too few for a
    beta of their own) or ``"held"`` (the held days alone: ``vae train``'s single split, whose
    test part is long). ``vol_beta_days`` -- the beta behind the trailing residual vol (the
    confounder): the ``"window"``'s own (what the daily report shows) or the ``"span"``'s
    (the real-data study's walk-forward). The choices change the published numbers, so each
    caller keeps its own; the test itself is :func:`anomaly_test`, seeded with ``seed``.
    ``surprise_model``: the model whose surprise is tested (default ``model``; ``vae train``
    tests the reference model's error and the headline model's learned-noise surprise).
    """
    before = reconstruction_errors(model, window)
    if beta_days not in ("span", "held"):
        raise ValueError(f"beta_days must be 'span' or 'held', got {beta_days!r}")
    if vol_beta_days not in ("window", "span"):
        raise ValueError(f"vol_beta_days must be 'window' or 'span', got {vol_beta_days!r}")
    if beta_days == "span" or vol_beta_days == "span":
        # a name missing a day of (d-H, d] drops out here (the assembly of the asset, so its
        # figures are reproduced to the last digit)
        span = pd.concat([window, held_returns.reindex(columns=window.columns)]).dropna(axis=1)
        span_resid = market_residual_returns(span, market.reindex(span.index))
    if beta_days == "span":
        resid = span_resid.loc[held_returns.index]
    else:
        resid = market_residual_returns(
            _complete(held_returns, window.columns), market.reindex(held_returns.index)
        )
    if vol_beta_days == "window":
        trailing_vol = market_residual_returns(window, market.reindex(window.index)).std(ddof=1)
    else:
        trailing_vol = span_resid.loc[window.index].std(ddof=1)
    test = anomaly_test(
        before,
        resid,
        trailing_vol,
        planted=planted.astype(bool) if planted is not None else None,
        seed=seed,
    )
    surprise = surprises(model if surprise_model is None else surprise_model, window)
    surprise_test = anomaly_test(
        surprise,
        resid,
        trailing_vol,
        planted=planted.astype(bool) if planted is not None else None,
        seed=seed,
    )
    test = test.model_copy(
        update={
            "surprise_vs_anomaly_rho": surprise_test.error_vs_anomaly_rho,
            "surprise_partial_rho": surprise_test.partial_rho_given_idio_vol,
            "surprise_partial_rho_ci": surprise_test.partial_rho_ci,
        }
    )
    frame = pd.DataFrame(
        {
            "decision_error": before,
            "decision_flagged": flag_anomalies(before).astype(float),
            "later_drawdown": max_drawdown(resid).reindex(before.index),
            "decision_surprise": surprise.reindex(before.index),
        }
    ).rename_axis("ticker")
    return FlagEvaluation(decision_date=pd.Timestamp(window.index[-1]), frame=frame, test=test)


def _complete(returns: pd.DataFrame, names: pd.Index) -> pd.DataFrame:
    """``returns`` of ``names`` without a missing day; the frame itself when it already is
    (no copy, so a caller's figures stay those of the frame it passed, to the last digit)."""
    if returns.columns.equals(names) and not returns.isna().to_numpy().any():
        return returns
    return returns.reindex(columns=names).dropna(axis=1)


@dataclass(frozen=True)
class AnomalyReport:
    """One day's anomaly report.

    ``frame`` (index: ticker, the names of today's window; columns
    :data:`ANOMALY_REPORT_COLUMNS`): today's ``recon_error`` and ``flagged`` (top 20 %,
    by the error) and ``surprise`` (the error in units of each name's own noise, scale-free),
    trailing annualised ``idio_vol``, the ``planted`` flag (1.0 / 0.0; NaN when the truth is
    unknown), and the evaluation of the decision date's flags (NaT / NaN when there was
    none). ``test``: that evaluation's statistics, None when there was none.
    """

    frame: pd.DataFrame
    test: AnomalyTest | None
    decision_date: pd.Timestamp | None

    @property
    def n_flagged(self) -> int:
        return int(self.frame["flagged"].sum())

    def metadata(self) -> dict[str, float | int]:
        """Flag count and the test's float statistics (the asset's run metadata)."""
        out: dict[str, float | int] = {"flagged": self.n_flagged}
        if self.test is not None:
            out.update({k: v for k, v in self.test.model_dump().items() if isinstance(v, float)})
        return out


def evaluate_anomalies(
    model_now: TrainResult,
    window_now: pd.DataFrame,
    market: pd.Series,
    model_then: TrainResult | None = None,
    window_then: pd.DataFrame | None = None,
    held_returns: pd.DataFrame | None = None,
    planted: pd.Series | None = None,
    seed: int = 42,
    beta_days: BetaDays = "span",
) -> AnomalyReport:
    """Today's reconstruction errors and top-20 % flags, and the test of the flags made at the
    decision date H days earlier with that date's model (:func:`evaluate_flags`).

    Pass ``model_then``, ``window_then`` and ``held_returns`` together (the decision date's
    model and window, the held days (d-H, d]) or none of them: with none (no decision model
    stored yet) only today's part is filled. ``market`` must cover every date passed;
    ``planted`` (ticker -> flag) only when the truth is known (synthetic data).
    """
    then = (model_then, window_then, held_returns)
    if any(x is None for x in then) and not all(x is None for x in then):
        raise ValueError("pass model_then, window_then and held_returns together, or none")
    frame = model_errors(model_now, window_now, market)
    frame["flagged"] = flag_anomalies(frame["recon_error"])
    frame = frame[["recon_error", "flagged", "idio_vol"]].rename_axis("ticker")
    frame["planted"] = planted.reindex(frame.index).astype(float) if planted is not None else np.nan
    frame["decision_date"] = pd.NaT
    frame[EVALUATION_COLUMNS] = np.nan
    frame["surprise"] = surprises(model_now, window_now).reindex(frame.index)
    frame = frame[ANOMALY_REPORT_COLUMNS]
    if model_then is None:
        return AnomalyReport(frame=frame, test=None, decision_date=None)
    evaluation = evaluate_flags(
        model_then, window_then, held_returns, market, planted=planted, seed=seed,
        beta_days=beta_days,
    )  # fmt: skip
    frame["decision_date"] = evaluation.decision_date
    frame[EVALUATION_COLUMNS] = evaluation.frame.reindex(frame.index)[EVALUATION_COLUMNS]
    return AnomalyReport(frame=frame, test=evaluation.test, decision_date=evaluation.decision_date)
