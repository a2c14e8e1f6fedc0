"""Minimum-variance horse race: weights, realised vol, single split, walk-forward, bootstrap.

The unconstrained global minimum-variance portfolio ``w = S^-1 1 / 1' S^-1 1`` depends on the
covariance estimate only, so its realised out-of-sample volatility is a clean score of an
estimator (docs/architecture.md: numerics, measuring). Lower is better; the oracle (true covariance) is the floor.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg
from sklearn.base import BaseEstimator

ANNUALISE = np.sqrt(252.0)
ORACLE = "oracle"

FitKwargs = Callable[[str, pd.DataFrame, Any], Mapping[str, Any]]


def minvar_weights(cov: np.ndarray | pd.DataFrame) -> np.ndarray:
    """Unconstrained minimum-variance weights (sum to 1) by a Cholesky solve of ``cov w = 1``.

    Raises ``ValueError`` when ``cov`` is not square, not finite, not positive definite or so
    ill-conditioned that the solve is meaningless (e.g. a sample covariance with N >= T).
    """
    arr = (
        cov.to_numpy(dtype=np.float64) if isinstance(cov, pd.DataFrame) else np.asarray(cov, float)
    )
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise ValueError(f"minvar_weights: covariance must be a square matrix, got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("minvar_weights: covariance contains NaN/inf")
    ones = np.ones(arr.shape[0])
    try:
        # scipy warns (LinAlgWarning) when the reciprocal condition number is below eps: promote
        # it so a singular estimate fails loudly instead of producing huge, meaningless weights.
        with warnings.catch_warnings():
            warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
            x = scipy.linalg.solve(arr, ones, assume_a="pos")
    except (np.linalg.LinAlgError, scipy.linalg.LinAlgWarning) as exc:
        raise ValueError(
            f"minvar_weights: covariance is singular or not positive definite ({exc})"
        ) from None
    total = x.sum()
    if not np.isfinite(total) or total <= 0:
        raise ValueError("minvar_weights: 1' S^-1 1 is not positive; covariance is not usable")
    return x / total


def _portfolio_returns(weights: np.ndarray, returns: pd.DataFrame | np.ndarray) -> np.ndarray:
    arr = returns.to_numpy(dtype=np.float64) if isinstance(returns, pd.DataFrame) else returns
    arr = np.asarray(arr, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64).ravel()
    if arr.ndim != 2 or arr.shape[1] != w.shape[0]:
        raise ValueError(f"{w.shape[0]} weights for returns of shape {arr.shape}")
    return arr @ w


def annualised_vol(daily: np.ndarray | pd.Series) -> float:
    """``sqrt(252) *`` the sample std (ddof 1) of a daily return series (NaN ignored)."""
    x = np.asarray(daily, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.shape[0] < 2:
        raise ValueError("need at least 2 daily returns for a volatility")
    return float(np.std(x, ddof=1) * ANNUALISE)


def realised_vol(weights: np.ndarray, returns_oos: pd.DataFrame | np.ndarray) -> float:
    """Annualised realised volatility of the constant-weight portfolio over ``returns_oos``."""
    return annualised_vol(_portfolio_returns(weights, returns_oos))


def _as_frame(returns: pd.DataFrame | np.ndarray) -> pd.DataFrame:
    if isinstance(returns, pd.DataFrame):
        frame = returns
    else:
        frame = pd.DataFrame(np.asarray(returns, dtype=np.float64))
    if frame.ndim != 2 or frame.shape[1] < 1:
        raise ValueError(f"returns must be a T x N panel, got shape {frame.shape}")
    if not np.isfinite(frame.to_numpy(dtype=np.float64)).all():
        raise ValueError("returns contain NaN/inf; clean the panel first")
    return frame


def _summary_frame(vols: dict[str, float], extra: dict[str, dict[str, Any]] | None = None):
    ref = vols.get(ORACLE, np.nan)
    rows = []
    for name, vol in vols.items():
        row = {"estimator": name, "vol": vol, "gap_to_oracle": vol - ref}
        row.update((extra or {}).get(name, {}))
        rows.append(row)
    return pd.DataFrame(rows).sort_values("vol", kind="stable").reset_index(drop=True)


def single_split(
    returns: pd.DataFrame | np.ndarray,
    estimators: Mapping[str, BaseEstimator],
    train_frac: float = 0.5,
    oracle_cov: np.ndarray | None = None,
    fit_kwargs: FitKwargs | None = None,
) -> pd.DataFrame:
    """Fit each estimator (in place) on the first ``train_frac`` of days, score on the rest.

    Returns DataFrame(estimator, vol, gap_to_oracle) sorted by vol; with ``oracle_cov`` an
    "oracle" row is added and gaps are measured to it (NaN otherwise; an estimator named
    "oracle" in ``estimators`` also serves as the reference).
    ``fit_kwargs(name, train_slice, decision_date) -> dict`` supplies e.g. ``{"y": labels}``.
    """
    frame = _as_frame(returns)
    split = int(round(frame.shape[0] * train_frac))
    if split < 2 or frame.shape[0] - split < 2:
        raise ValueError(f"train_frac={train_frac} leaves fewer than 2 days on one side")
    train, test = frame.iloc[:split], frame.iloc[split:]
    decision = frame.index[split - 1]
    vols: dict[str, float] = {}
    for name, est in estimators.items():
        kwargs = dict(fit_kwargs(name, train, decision)) if fit_kwargs else {}
        est.fit(train, **kwargs)
        vols[name] = realised_vol(minvar_weights(est.covariance_), test)
    if oracle_cov is not None:
        vols[ORACLE] = realised_vol(minvar_weights(oracle_cov), test)
    return _summary_frame(vols)


@dataclass
class WalkForwardResult:
    """Out-of-sample record of a walk-forward run.

    ``daily``: date x estimator daily portfolio returns (each rebalance's weights held for the
    next ``rebalance`` days); ``weights``: estimator -> (decision date x ticker) weights;
    ``fit_seconds``: decision date x estimator fit wall time; ``decision_dates``: the dates whose
    close ends each training window.
    """

    daily: pd.DataFrame
    weights: dict[str, pd.DataFrame] = field(default_factory=dict)
    fit_seconds: pd.DataFrame = field(default_factory=pd.DataFrame)
    decision_dates: list[Any] = field(default_factory=list)
    window: int = 0
    rebalance: int = 0

    def summary(self) -> pd.DataFrame:
        """DataFrame(estimator, vol, gap_to_oracle, n_rebalances) sorted by vol (ascending)."""
        vols = {name: annualised_vol(self.daily[name]) for name in self.daily.columns}
        counts = {
            name: {
                "n_rebalances": int(len(self.weights[name]))
                if name in self.weights
                else len(self.decision_dates)
            }
            for name in vols
        }
        return _summary_frame(vols, counts)


def walk_forward(
    returns: pd.DataFrame | np.ndarray,
    make_estimators: Callable[[Any], Mapping[str, BaseEstimator]],
    window: int = 504,
    rebalance: int = 21,
    fit_kwargs: FitKwargs | None = None,
    oracle: Callable[[Any], np.ndarray] | None = None,
    progress: Callable[[int, int, Any], None] | None = None,
) -> WalkForwardResult:
    """Rolling-window min-variance backtest with no look-ahead.

    At each decision position i (i = window, window + rebalance, ...) the estimators from
    ``make_estimators(decision_date)`` are fitted on rows ``[i - window, i)`` -- the decision date
    is row ``i - 1``, whose close is the last information used -- and the resulting weights are
    held over rows ``[i, i + rebalance)``.

    Args:
        fit_kwargs: ``callable(name, train_slice, decision_date) -> dict`` of extra ``fit``
            arguments per estimator and window (e.g. ``{"y": regime labels of the slice}``).
        oracle: ``callable(decision_date) -> N x N`` true covariance; adds an "oracle" column.
        progress: ``callable(step, n_steps, decision_date)`` after each rebalance.
    """

    def step(decision: Any, train: pd.DataFrame):
        estimators = make_estimators(decision)
        if oracle is not None and ORACLE in estimators:
            raise ValueError("walk_forward: both an 'oracle' estimator and oracle= were given")
        weights, timing = {}, {}
        for name, est in estimators.items():
            kwargs = dict(fit_kwargs(name, train, decision)) if fit_kwargs else {}
            t0 = time.perf_counter()
            est.fit(train, **kwargs)
            timing[name] = time.perf_counter() - t0
            weights[name] = minvar_weights(est.covariance_)
        return weights, timing

    return walk_forward_weights(returns, step, window, rebalance, oracle, progress)


# decide(decision_date, train_slice) -> (weights by estimator, fit seconds by estimator)
DecideFn = Callable[[Any, pd.DataFrame], tuple[Mapping[str, np.ndarray], Mapping[str, float]]]


def walk_forward_weights(
    returns: pd.DataFrame | np.ndarray,
    decide: DecideFn,
    window: int = 504,
    rebalance: int = 21,
    oracle: Callable[[Any], np.ndarray] | None = None,
    progress: Callable[[int, int, Any], None] | None = None,
) -> WalkForwardResult:
    """The rolling harness of :func:`walk_forward` around any ``decide`` (e.g. the refit
    stages): at each decision it gets the training slice and returns min-variance weights."""
    frame = _as_frame(returns)
    t = frame.shape[0]
    if window < 2 or rebalance < 1:
        raise ValueError(f"need window >= 2 and rebalance >= 1, got {window}, {rebalance}")
    if t <= window:
        raise ValueError(f"{t} days leave no out-of-sample period after a {window}-day window")
    values = frame.to_numpy(dtype=np.float64)
    starts = list(range(window, t, rebalance))
    daily: dict[str, np.ndarray] = {}
    weights: dict[str, dict[Any, np.ndarray]] = {}
    seconds: list[dict[str, float]] = []
    dates = []

    def record(name: str, decision: Any, w: np.ndarray, rows: slice) -> None:
        if name not in daily:
            daily[name] = np.full(t, np.nan)
            weights[name] = {}
        daily[name][rows] = values[rows] @ w
        weights[name][decision] = w

    for step, i in enumerate(starts, start=1):
        train = frame.iloc[i - window : i]
        decision = frame.index[i - 1]
        hold = slice(i, min(i + rebalance, t))
        decided, timing = decide(decision, train)
        for name, w in decided.items():
            record(name, decision, w, hold)
        if oracle is not None:
            record(ORACLE, decision, minvar_weights(oracle(decision)), hold)
        seconds.append(dict(timing))
        dates.append(decision)
        if progress is not None:
            progress(step, len(starts), decision)

    oos = frame.index[window:]
    daily_frame = pd.DataFrame({k: v[window:] for k, v in daily.items()}, index=oos)
    weight_frames = {
        name: pd.DataFrame(
            np.vstack(list(ws.values())),
            index=pd.Index(list(ws), name="decision_date"),
            columns=frame.columns,
        )
        for name, ws in weights.items()
    }
    return WalkForwardResult(
        daily=daily_frame,
        weights=weight_frames,
        fit_seconds=pd.DataFrame(seconds, index=pd.Index(dates, name="decision_date")),
        decision_dates=dates,
        window=window,
        rebalance=rebalance,
    )


def paired_bootstrap(
    daily_ret_a: pd.Series | np.ndarray,
    daily_ret_b: pd.Series | np.ndarray,
    n_boot: int = 2000,
    block: int = 21,
    seed: int = 42,
) -> tuple[float, float, float]:
    """``(diff, lo, hi)``: annualised vol(a) - vol(b) and its 95 % circular-block-bootstrap interval.

    Days are resampled *jointly* (the same blocks for a and b), which keeps the strong positive
    correlation between the two portfolios and makes the interval far tighter than comparing two
    separate intervals. Blocks of ``block`` days keep volatility clustering. Series are aligned on
    their index and rows with a NaN in either are dropped.
    """
    if isinstance(daily_ret_a, pd.Series) and isinstance(daily_ret_b, pd.Series):
        both = pd.concat([daily_ret_a, daily_ret_b], axis=1, join="inner").dropna()
        a, b = both.iloc[:, 0].to_numpy(float), both.iloc[:, 1].to_numpy(float)
    else:
        a, b = np.asarray(daily_ret_a, float).ravel(), np.asarray(daily_ret_b, float).ravel()
        if a.shape != b.shape:
            raise ValueError(f"paired series differ in length: {a.shape[0]} vs {b.shape[0]}")
        keep = np.isfinite(a) & np.isfinite(b)
        a, b = a[keep], b[keep]
    n = a.shape[0]
    if n < 2:
        raise ValueError("paired_bootstrap: need at least 2 paired days")
    if block < 1 or n_boot < 1:
        raise ValueError(
            f"paired_bootstrap: need block >= 1 and n_boot >= 1, got {block}, {n_boot}"
        )
    block = min(block, n)
    rng = np.random.default_rng(seed)
    n_blocks = -(-n // block)
    starts = rng.integers(0, n, size=(n_boot, n_blocks))
    idx = ((starts[:, :, None] + np.arange(block)) % n).reshape(n_boot, -1)[:, :n]
    diffs = (a[idx].std(axis=1, ddof=1) - b[idx].std(axis=1, ddof=1)) * ANNUALISE
    diff = (np.std(a, ddof=1) - np.std(b, ddof=1)) * ANNUALISE
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return float(diff), float(lo), float(hi)
