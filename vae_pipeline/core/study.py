"""The walk-forward min-variance horse race on a returns panel: the harness of ``vae study``.

One implementation for the CLI (``vae study PRICES``) and ``benchmarks/real_data_study.py``:
every estimator is refitted on the trailing ``window`` days every ``rebalance`` days through the
core refit stages (:class:`~vae_pipeline.core.refit.WindowRefit`) and held until the next
rebalance (no look-ahead); each min-variance portfolio's realised annualised vol is compared with
the baselines' by a paired circular block bootstrap (21-day blocks). The out-of-sample days are
also split by the regime at their decision date.

Pure: returns and observables in, a JSON-ready dict out (no files, no Dagster, no settings).
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from vae_pipeline.core.covariance import REGISTRY
from vae_pipeline.core.minvar import annualised_vol, paired_bootstrap, walk_forward_weights
from vae_pipeline.core.refit import WindowRefit
from vae_pipeline.core.training import TrainConfig

# The study's default race; the regime-labelled ones join when real observables are given.
DEFAULT_ESTIMATORS = (
    "sample", "ledoit_wolf", "nonlinear_shrinkage", "pca", "factor_analysis", "pca_auto",
    "factor_analysis_auto", "vae", "factor_analysis_matched", "vae_mlp", "vae_reference",
)  # fmt: skip
REGIME_ESTIMATORS = ("cvae", "ledoit_wolf_regime")
# Each estimator's vol difference is bootstrapped against these (always raced: they are cheap).
BASELINES = ("ledoit_wolf", "nonlinear_shrinkage", "pca")
BLOCK = 21
REGIME_COLUMNS = ("ledoit_wolf", "ledoit_wolf_regime", "pca", "vae", "cvae")
BASELINE_LABELS = {"ledoit_wolf": "Ledoit-Wolf", "nonlinear_shrinkage": "nonlinear shrinkage",
                   "pca": "PCA"}  # fmt: skip

# progress(rebalances done, total, info): info = decision date, models fitted so far, seconds.
StudyProgress = Callable[[int, int, dict[str, Any]], None]


@dataclass(frozen=True)
class StudyConfig:
    """The horse race's options (``estimators`` None: :func:`default_estimators`)."""

    window: int = 504
    rebalance: int = 21
    latent: int = 4
    beta: float = 1.0
    epochs: int = 300
    n_samples: int = 2000
    n_boot: int = 2000
    seed: int = 42
    device: str = "cpu"
    estimators: tuple[str, ...] | None = None
    regime: bool = False  # real regime observables given: the regime estimators join the default

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["estimators"] = list(self.estimators) if self.estimators is not None else None
        return d


def default_estimators(regime: bool = False) -> tuple[str, ...]:
    return DEFAULT_ESTIMATORS + (REGIME_ESTIMATORS if regime else ())


def resolve_estimators(estimators: Iterable[str] | None, regime: bool = False) -> tuple[str, ...]:
    """The raced names: ``estimators`` (or the default) plus the baselines, registry order kept
    as given; ValueError naming any unknown (or truth-needing) estimator."""
    chosen = default_estimators(regime) if estimators is None else tuple(estimators)
    valid = [n for n, spec in REGISTRY.items() if not spec.needs_truth]
    unknown = [n for n in chosen if n not in valid]
    if unknown:
        raise ValueError(
            f"unknown estimator(s) {', '.join(unknown)}; choose from {', '.join(valid)}"
        )
    if not chosen:
        raise ValueError("no estimator to race")
    return tuple(dict.fromkeys([*BASELINES, *chosen]))


def check_panel(returns: pd.DataFrame, window: int, rebalance: int) -> None:
    """ValueError when the panel cannot hold one window plus an out-of-sample period."""
    if window < 20 or rebalance < 1:
        raise ValueError(f"need --window >= 20 and --rebalance >= 1, got {window}, {rebalance}")
    if returns.shape[1] < 2:
        raise ValueError(f"{returns.shape[1]} name(s) with a full history: need at least 2")
    if len(returns) < window + 2:
        raise ValueError(
            f"window W={window} is too long for {len(returns)} days of returns "
            f"({returns.index[0]:%Y-%m-%d}..{returns.index[-1]:%Y-%m-%d}): "
            f"need at least W + 2 days; lower --window"
        )


def _interval(a: pd.Series, b: pd.Series, config: StudyConfig) -> list[float]:
    return [float(x) for x in paired_bootstrap(a, b, n_boot=config.n_boot, block=BLOCK,
                                               seed=config.seed)]  # fmt: skip


def _latents_chosen(models: WindowRefit) -> dict:
    """The headline VAE's chosen and active latents per window (empty if it was not raced)."""
    key = REGISTRY["vae"].model_key
    out: dict[str, Any] = {}
    for decision, fitted in models.fitted.items():
        if key in fitted:
            res = fitted[key]
            out[f"{decision:%Y-%m-%d}"] = {"k": res.config.latent_dim,
                                           "active": res.active_latents,
                                           "stop": res.stop_reason,
                                           "seconds": round(res.seconds, 2)}  # fmt: skip
    if out:
        ks = np.array([v["k"] for v in out.values()])
        out["summary"] = {"k_median": float(np.median(ks)), "k_min": int(ks.min()),
                          "k_max": int(ks.max())}  # fmt: skip
    return out


@dataclass
class Study:
    """The study's JSON-ready ``result`` and, for later analyses, the refit (every window's
    models in ``models.fitted``) and the walk-forward record."""

    result: dict[str, Any]
    models: WindowRefit
    walk_forward: Any = field(repr=False, default=None)


def run_study(
    returns: pd.DataFrame,
    observables: pd.DataFrame,
    config: StudyConfig,
    progress: StudyProgress | None = None,
    keep: bool = False,
) -> Study:
    """The walk-forward horse race of ``config`` on ``returns`` (date x name, no NaN).

    ``observables``: indexed by date, with a ``regime`` column (0 expansion, 1 contraction): the
    CVAE's labels (the regime at the previous close) and the per-regime split. ``keep``: keep
    every window's models (``Study.models.fitted``); the headline VAE's chosen k is reported
    either way.
    """
    t0 = time.perf_counter()
    check_panel(returns, config.window, config.rebalance)
    names = resolve_estimators(config.estimators, config.regime)
    import torch

    torch.manual_seed(config.seed)
    regime = observables["regime"].reindex(returns.index).fillna(0).astype(int)
    labels = regime.shift(1).fillna(0).astype(int)  # the regime at the previous close
    cfg = TrainConfig(latent_dim=config.latent, beta=config.beta, epochs=config.epochs,
                      seed=config.seed, device=config.device).validate()  # fmt: skip
    models = WindowRefit(
        config=cfg,
        k=config.latent,
        names=names,
        labels=labels,
        regime_at=lambda decision: int(regime.loc[decision]),
        n_samples=config.n_samples,
        seed=config.seed,
        keep=True,
    )  # fmt: skip (kept for the chosen k; dropped unless keep)

    def step(done: int, total: int, decision: Any) -> None:
        if progress is not None:
            progress(done, total, {"decision": f"{decision:%Y-%m-%d}", "n_fits": models.n_fits,
                                   "seconds": time.perf_counter() - t0})  # fmt: skip

    wf = walk_forward_weights(returns, models, window=config.window, rebalance=config.rebalance,
                              progress=step)  # fmt: skip
    daily = wf.daily
    rows = []
    for name in daily.columns:
        row: dict[str, Any] = {"estimator": name, "vol": annualised_vol(daily[name])}
        for base in BASELINES:
            row[f"vs_{base}"] = (
                _interval(daily[name], daily[base], config) if name != base else None
            )
        rows.append(row)
    rows.sort(key=lambda r: r["vol"])

    decisions = pd.DatetimeIndex(wf.decision_dates)
    pos = decisions.searchsorted(daily.index, side="left") - 1
    at_decision = regime.loc[decisions].to_numpy()
    day_regime = at_decision[pos]
    per_regime = {}
    for code, label in ((0, "expansion"), (1, "contraction")):
        mask = day_regime == code
        if mask.sum() >= 2:
            days = daily.loc[mask]  # that regime's days, concatenated (blocks may straddle gaps)
            per_regime[label] = {
                "n_days": int(mask.sum()),
                "n_rebalances": int((at_decision == code).sum()),
                "vol": {c: annualised_vol(days[c]) for c in daily.columns},
                "vs_ledoit_wolf": {
                    c: _interval(days[c], days["ledoit_wolf"], config)
                    for c in REGIME_COLUMNS
                    if c != "ledoit_wolf" and c in daily.columns
                },  # fmt: skip
            }
    chosen = _latents_chosen(models)
    if not keep:
        models.fitted.clear()
    result = {
        "config": config.as_dict(),
        "estimators": list(names),
        "n_names": int(returns.shape[1]),
        "first_day": f"{returns.index[0]:%Y-%m-%d}",
        "last_day": f"{returns.index[-1]:%Y-%m-%d}",
        "n_rebalances": len(wf.decision_dates),
        "oos_days": len(daily),
        "horse_race": rows,
        "per_regime": per_regime,
        "latents_chosen": chosen,
        "n_fits": models.n_fits,
        "fit_seconds": models.seconds,
        "seconds": time.perf_counter() - t0,
        "machine": {
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
        },  # fmt: skip
    }
    return Study(result=result, models=models, walk_forward=wf)


# ------------------------------------------------------------------------------- the table


def _vol(x: float) -> str:
    return f"{100 * x:.2f} %"


def _ci(interval: list[float] | None) -> str:
    """``-0.99 [-1.51, -0.57] *``: vol points, 95 % interval, * when it excludes 0."""
    if interval is None:
        return "-"
    d, lo, hi = interval
    mark = " *" if hi < 0 or lo > 0 else ""
    return f"{100 * d:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]{mark}"


def markdown_table(result: dict[str, Any]) -> str:
    """The horse race as a markdown table, rows by vol: vol, then the difference against each
    baseline the rows were compared with (a column when the rows hold its key)."""
    rows = sorted(result["horse_race"], key=lambda r: r["vol"])
    bases = [b for b in BASELINES if any(f"vs_{b}" in r for r in rows)]
    header = ["estimator", "vol", *(f"vs {BASELINE_LABELS[b]}" for b in bases)]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for r in rows:
        cells = [r["estimator"], _vol(r["vol"]), *(_ci(r.get(f"vs_{b}")) for b in bases)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
