"""The end-to-end experiment behind ``vae train``: one synthetic panel, every analysis, one report.

Steps (docs/architecture.md: numerics, measuring):

1. simulate the seed-``seed`` panel (:func:`generate_panel`);
2. train the VAE (and the CVAE with ``conditional``) on the training part (the first
   ``train_frac`` of days);
3. interpretation on the training part: |corr| of each latent with the market return and the
   daily *changes* of the volatility index and the macro slope (a latent read off one day's
   returns tracks what moves returns that day, i.e. the change of a slow level series; the level
   correlations are reported beside), and true-factor recovery R^2 for the VAE, PCA(k) and
   factor analysis(k);
4. the min-variance horse race, either the single split (the reference set-up: fit on the
   training part, hold the weights over the rest) or, with ``walk_forward``, the rolling
   harness (window ``window``, every estimator refitted every ``rebalance`` days), with a paired
   block-bootstrap interval for each estimator against Ledoit-Wolf and PCA and the gap to the
   oracle; with ``conditional`` the walk-forward also splits the out-of-sample days by the
   regime at their decision date;
5. the anomaly test: per-stock reconstruction error on the training part against the later
   market-residual drawdowns over the rest of the panel.

Regime labels: the returns of day t are driven by the regime known at the close of day t-1
(see ``core.synthetic``), so a day's *condition* is the previous close's regime. The CVAE and
the regime-conditional Ledoit-Wolf are trained on those labels and asked for the regime at the
decision date, which is exactly the condition of the first held day.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal

import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator

from vae_pipeline.core.covariance import REGISTRY, VAECovariance
from vae_pipeline.core.minvar import (
    ORACLE,
    WalkForwardResult,
    annualised_vol,
    paired_bootstrap,
    walk_forward_weights,
)
from vae_pipeline.core.refit import (
    CVAE_MODEL,
    WindowRefit,
    evaluate_flags,
    experiment_estimators,
    interpret_factors,
)
from vae_pipeline.core.results import (
    AnomalyTest,
    CovarianceScore,
    LatentInterpretation,
    TrainSummary,
)
from vae_pipeline.core.synthetic import SyntheticPanel, generate_panel
from vae_pipeline.core.training import TrainConfig, TrainResult

# progress(stage, done, total): stage is "train vae", "train cvae" or "walk-forward".
ProgressFn = Callable[[str, int, int], None]

REGIME_NAMES = {0: "expansion", 1: "contraction"}
# The baselines every estimator is compared with (paired bootstrap), per issue 2.
BASELINES = ("ledoit_wolf", "pca")
# Bootstrap block length in days: about a month keeps volatility clustering inside a block. Not
# the rebalance period: the single split holds one weight vector for the whole test part.
BOOTSTRAP_BLOCK = 21
# Which version of each observable the headline ``latent_observable_corr`` uses (module doc).
OBSERVABLE_SERIES = {
    "market": ("market", "daily return"),
    "volatility": ("volatility_change", "daily change"),
    "macro_slope": ("macro_slope_change", "daily change"),
}


class _Model(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False, extra="forbid")


class ExperimentConfig(_Model):
    """Every knob of :func:`run_experiment`, validated (a bad value raises ``ValueError``)."""

    latent: int = Field(4, ge=1, description="latent dims k (also PCA / FA components)")
    beta: float = Field(1.0, ge=0.0)
    epochs: int = Field(300, ge=1)
    lr: float | None = Field(None, gt=0.0, description="None = TrainConfig's default")
    decoder: Literal["linear", "mlp"] = "linear"
    conditional: bool = False
    seed: int = 42
    kind: Literal["linear", "regime"] = "linear"
    walk_forward: bool = False
    n_names: int = Field(60, ge=3)
    n_days: int = Field(1260, ge=20)
    window: int = Field(504, ge=10)
    rebalance: int = Field(21, ge=1)
    train_frac: float = Field(0.5, gt=0.0, lt=1.0)
    n_samples: int = Field(2000, ge=2, description="Monte-Carlo draws of the VAE covariance")
    n_boot: int = Field(2000, ge=100)
    device: str = "cpu"
    torch_threads: int | None = Field(
        1, ge=1, description="torch intra-op threads while running (None = leave as is)"
    )

    @model_validator(mode="after")
    def _consistent(self) -> ExperimentConfig:
        if self.latent >= self.n_names:
            raise ValueError(
                f"latent={self.latent} must be smaller than the number of names "
                f"n_names={self.n_names} (a k-factor model needs an idiosyncratic part)"
            )
        split = int(round(self.n_days * self.train_frac))
        if split < max(20, self.latent + 2) or self.n_days - split < 20:
            raise ValueError(
                f"train_frac={self.train_frac} of n_days={self.n_days} leaves {split} training "
                f"and {self.n_days - split} test days; need at least 20 on each side"
            )
        if self.walk_forward and self.n_days <= self.window + 1:
            raise ValueError(
                f"walk-forward needs n_days > window + 1, got n_days={self.n_days}, "
                f"window={self.window}"
            )
        self.train_config()  # TrainConfig.validate: device spelling, lr, ...
        return self

    def train_config(self) -> TrainConfig:
        kwargs: dict[str, Any] = dict(
            latent_dim=self.latent,
            beta=self.beta,
            epochs=self.epochs,
            decoder=self.decoder,
            seed=self.seed,
            device=self.device,
        )
        if self.lr is not None:
            kwargs["lr"] = self.lr
        return TrainConfig(**kwargs).validate()


class PerRegime(_Model):
    """Out-of-sample realised vol of each estimator over the days held in one regime."""

    regime: str
    n_days: int = Field(ge=0)
    n_rebalances: int = Field(ge=0)
    vol: dict[str, float]


class ExperimentReport(_Model):
    """Everything :func:`run_experiment` measured; :meth:`to_json_dict` is the CLI's JSON."""

    config: ExperimentConfig
    mode: Literal["single_split", "walk_forward"]
    scores: list[CovarianceScore]  # sorted by vol, ascending
    interpretation: LatentInterpretation
    cvae_interpretation: LatentInterpretation | None = None
    anomaly: AnomalyTest
    train: TrainSummary
    train_cvae: TrainSummary | None = None
    train_device: str
    lr: float  # the learning rate actually used
    per_regime: list[PerRegime] | None = None
    n_fits: int = Field(ge=1, description="VAE / CVAE trainings in the whole run")
    fit_seconds: float = Field(ge=0.0, description="wall time of all VAE / CVAE trainings")
    seconds: float = Field(ge=0.0, description="wall time of the whole experiment")

    def minvar(self) -> dict[str, float]:
        return {s.estimator: s.vol for s in self.scores}

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict: issue 2's required keys first, then the extras."""
        interp = self.interpretation
        best = interp.best_abs_corr
        recovery = dict(interp.recovery_r2 or {})
        if self.cvae_interpretation is not None and self.cvae_interpretation.recovery_r2:
            recovery["cvae"] = self.cvae_interpretation.recovery_r2["cvae"]
        baselines = {
            method: {obs: vals.get(col) for obs, (col, _) in OBSERVABLE_SERIES.items()}
            for method, vals in interp.baseline_best_abs_corr.items()
        }
        out: dict[str, Any] = {
            "minvar": self.minvar(),
            "factor_recovery": recovery,
            "latent_market_corr": best["market"],
            "latent_observable_corr": {
                obs: best.get(col) for obs, (col, _) in OBSERVABLE_SERIES.items()
            },
            "anomaly": self.anomaly.model_dump(mode="json"),
            "train": self.train.model_dump(mode="json"),
            # ---- extras ----
            "mode": self.mode,
            "latent_observable_series": {obs: s for obs, (_, s) in OBSERVABLE_SERIES.items()},
            "latent_observable_corr_level": {
                obs: best.get(obs) for obs in ("volatility", "macro_slope")
            },
            "baseline_latent_observable_corr": baselines,
            "factor_names": interp.factor_names,
            "gap_to_oracle": {s.estimator: s.gap_to_oracle for s in self.scores},
            "intervals": {
                s.estimator: {
                    "vs_ledoit_wolf": _listed(s.ci_vs_ledoit_wolf),
                    "vs_pca": _listed(s.ci_vs_pca),
                }
                for s in self.scores
            },
            "n_rebalances": self.scores[0].n_rebalances if self.scores else 0,
            "vae_variants": [s.estimator for s in self.scores if _is_vae_variant(s.estimator)],
            "per_regime": (
                {r.regime: r.model_dump(mode="json", exclude={"regime"}) for r in self.per_regime}
                if self.per_regime is not None
                else None
            ),
            "train_cvae": self.train_cvae.model_dump(mode="json") if self.train_cvae else None,
            "train_device": self.train_device,
            "lr": self.lr,
            "n_fits": self.n_fits,
            "fit_seconds": self.fit_seconds,
            "seconds": self.seconds,
            "config": self.config.model_dump(mode="json"),
        }
        return out


def _listed(ci: tuple[float, float, float] | None) -> list[float] | None:
    return list(ci) if ci is not None else None


def _vae_variant_classes() -> dict[str, type[VAECovariance]]:
    """Every unconditional VAE covariance the experiment races ("vae" first, then the variants).

    Read off the estimator registry, so a variant the registry gains shows up here unchanged; a
    variant whose model is trained differently declares ``train_overrides`` there and gets one
    model per distinct dict (see ``core.refit.fit_models``).
    """
    found = {
        name: REGISTRY[name].cls
        for name in experiment_estimators(conditional=False)
        if REGISTRY[name].model == "vae"
    }
    return dict(sorted(found.items(), key=lambda kv: (kv[0] != "vae", kv[0])))


def _overrides(cls: type) -> dict[str, Any]:
    """The ``TrainConfig`` overrides of the registry entry of ``cls``."""
    for spec in REGISTRY.values():
        if spec.cls is cls and spec.model_key is not None:
            return dict(spec.model_key.overrides)
    return dict(getattr(cls, "train_overrides", None) or {})


def _is_vae_variant(name: str) -> bool:
    return name in _vae_variant_classes() and name != "vae"


def condition_labels(panel: SyntheticPanel) -> pd.Series:
    """Regime in force for each day's returns: the regime known at the previous close.

    The first day takes expansion (0), as the generator does.
    """
    regime = panel.observables["regime"].astype(int)
    return regime.shift(1).fillna(0).astype(int).rename("condition")


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads, then restore the previous setting.

    The layers here are ~N x 64 with N ~ 60: a thread pool costs more in synchronisation than it
    saves, and on a busy machine its spinning threads slow a fit down several-fold (see the
    report in benchmarks/bench_vae.py). One thread per process also lets parallel runs coexist.
    """
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _summary(result: TrainResult) -> TrainSummary:
    hist = result.history
    return TrainSummary(
        epochs=int(len(hist)), final_loss=float(hist["total"].iloc[-1]), seconds=result.seconds
    )


def _scores(wf: WalkForwardResult, n_boot: int, seed: int) -> list[CovarianceScore]:
    daily = wf.daily
    oracle_vol = annualised_vol(daily[ORACLE]) if ORACLE in daily else None
    scores = []
    for name in daily.columns:
        vol = annualised_vol(daily[name])
        cis: dict[str, tuple[float, float, float] | None] = {}
        for base in BASELINES:
            if base in daily and name != base:
                cis[base] = paired_bootstrap(
                    daily[name], daily[base], n_boot=n_boot, block=BOOTSTRAP_BLOCK, seed=seed
                )
            else:
                cis[base] = None
        scores.append(
            CovarianceScore(
                estimator=name,
                vol=vol,
                gap_to_oracle=None if oracle_vol is None else vol - oracle_vol,
                n_rebalances=len(wf.decision_dates),
                ci_vs_ledoit_wolf=cis["ledoit_wolf"],
                ci_vs_pca=cis["pca"],
            )
        )
    return sorted(scores, key=lambda s: s.vol)


def _per_regime(wf: WalkForwardResult, regime: pd.Series) -> list[PerRegime]:
    """Split the out-of-sample days by the regime at the decision date that set their weights."""
    decisions = pd.DatetimeIndex(wf.decision_dates)
    dec_regime = regime.loc[decisions].to_numpy()
    # Each held day belongs to the latest decision date strictly before it.
    day_regime = dec_regime[decisions.searchsorted(wf.daily.index, side="left") - 1]
    out = []
    for code, name in REGIME_NAMES.items():
        mask = day_regime == code
        vols = (
            {est: annualised_vol(wf.daily.loc[mask, est]) for est in wf.daily.columns}
            if mask.sum() >= 2
            else {}
        )
        out.append(
            PerRegime(
                regime=name,
                n_days=int(mask.sum()),
                n_rebalances=int((dec_regime == code).sum()),
                vol=dict(sorted(vols.items(), key=lambda kv: kv[1])),
            )
        )
    return out


def run_experiment(
    latent: int = 4,
    beta: float = 1.0,
    epochs: int = 300,
    conditional: bool = False,
    seed: int = 42,
    kind: str = "linear",
    walk_forward: bool = False,
    n_names: int = 60,
    n_days: int = 1260,
    window: int = 504,
    rebalance: int = 21,
    progress: ProgressFn | None = None,
    lr: float | None = None,
    decoder: str = "linear",
    train_frac: float = 0.5,
    n_samples: int = 2000,
    n_boot: int = 2000,
    device: str = "cpu",
    torch_threads: int | None = 1,
) -> ExperimentReport:
    """Run the whole experiment on the seed-``seed`` synthetic panel (see the module docstring).

    Raises ``ValueError`` (a pydantic ``ValidationError``) on an invalid setting, before any work.
    ``device`` defaults to "cpu": the models are tiny (one matmul per layer per epoch), so a GPU
    only adds launch latency, and CPU runs are deterministic.
    """
    cfg = ExperimentConfig(
        latent=latent,
        beta=beta,
        epochs=epochs,
        lr=lr,
        decoder=decoder,
        conditional=conditional,
        seed=seed,
        kind=kind,
        walk_forward=walk_forward,
        n_names=n_names,
        n_days=n_days,
        window=window,
        rebalance=rebalance,
        train_frac=train_frac,
        n_samples=n_samples,
        n_boot=n_boot,
        device=device,
        torch_threads=torch_threads,
    )
    with _torch_threads(cfg.torch_threads):
        return _run(cfg, progress)


def _run(cfg: ExperimentConfig, progress: ProgressFn | None) -> ExperimentReport:
    t0 = time.perf_counter()
    panel = generate_panel(n_days=cfg.n_days, n_names=cfg.n_names, kind=cfg.kind, seed=cfg.seed)
    returns = panel.returns
    labels = condition_labels(panel)
    split = int(round(len(returns) * cfg.train_frac))
    train, test = returns.iloc[:split], returns.iloc[split:]

    # One refit per window through the core stages (fit_models, then estimate_decisions): the
    # CVAE and regime Ledoit-Wolf train on the condition labels and decide for the regime at
    # the decision date, i.e. the condition of the first held day.
    regime = panel.observables["regime"]
    refit = WindowRefit(
        config=cfg.train_config(),
        k=cfg.latent,
        names=experiment_estimators(cfg.conditional),
        labels=labels if cfg.conditional else None,
        regime_at=(lambda decision: int(regime.loc[decision])) if cfg.conditional else None,
        n_samples=cfg.n_samples,
        seed=cfg.seed,
        progress=(
            None
            if progress is None
            else lambda key, epoch, total: progress(f"train {key.kind}", epoch, total)
        ),
    )
    # The interpretation and anomaly parts read the reference model (the plain VAE_MODEL).
    # The headline "vae" (learned per-stock noise) beside it: the anomaly test's surprise is
    # the error in units of its noise (the single split's horse race reuses this fit).
    plain = (
        ("vae_reference", "vae", "cvae_reference") if cfg.conditional else ("vae_reference", "vae")
    )
    part = refit.models(train, names=plain, report=True)
    vae = part.vae
    headline = part[REGISTRY["vae"].model_key]
    cvae = part[CVAE_MODEL] if cfg.conditional else None

    # Interpretation and the anomaly test through the core analysis stages (the ones the
    # assets call): the observables on the panel's own calendar, so the first training day
    # has a daily change; PCA and factor analysis beside the VAE, not the CVAE.
    observables = panel.observables.drop(columns="regime")
    interp = interpret_factors(
        vae, train, observables, panel.factors, seed=cfg.seed, name="vae"
    ).summary
    cvae_interp = None
    if cvae is not None:
        cvae_interp = interpret_factors(
            cvae,
            train,
            observables,
            panel.factors,
            seed=cfg.seed,
            baselines=(),
            name="cvae",
            conditions=labels.loc[train.index].to_numpy(),
        ).summary
    # The training part's model and flags against the whole test part: long enough for a
    # market beta of its own, so the residuals' beta is fitted on the held days alone.
    anomaly = evaluate_flags(
        vae,
        train,
        test,
        panel.observables["market"],
        planted=panel.anomaly,
        seed=cfg.seed,
        beta_days="held",
        surprise_model=headline,
    ).test

    # Horse race. The single split is the walk-forward harness with one rebalance that holds
    # the weights over the whole test part (deciding on the training part's models), so both
    # modes share one code path.
    wf_window, wf_rebalance = (
        (cfg.window, cfg.rebalance) if cfg.walk_forward else (split, len(returns) - split)
    )
    wf_progress = None
    if progress is not None and cfg.walk_forward:

        def wf_progress(step: int, n_steps: int, decision: Any) -> None:
            progress("walk-forward", step, n_steps)

    wf = walk_forward_weights(
        returns,
        refit,
        window=wf_window,
        rebalance=wf_rebalance,
        oracle=panel.true_covariance,
        progress=wf_progress,
    )
    scores = _scores(wf, cfg.n_boot, cfg.seed)
    per_regime = None
    if cfg.walk_forward and cfg.conditional:
        per_regime = _per_regime(wf, panel.observables["regime"].astype(int))

    return ExperimentReport(
        config=cfg,
        mode="walk_forward" if cfg.walk_forward else "single_split",
        scores=scores,
        interpretation=interp,
        cvae_interpretation=cvae_interp,
        anomaly=anomaly,
        train=_summary(vae),
        train_cvae=_summary(cvae) if cvae is not None else None,
        train_device=vae.device,
        lr=float(vae.config.lr),
        per_regime=per_regime,
        n_fits=refit.n_fits,
        fit_seconds=refit.seconds,
        seconds=time.perf_counter() - t0,
    )
