"""The estimator set, declared once: each covariance estimator and what its fit needs.

Every caller (the refit stages, the walk-forward experiment, the benchmarks, the pipeline)
derives what to train and what to estimate from :data:`REGISTRY`, so adding an estimator is one
entry here. A model-based entry names the model it reads ("vae" or "cvae") and the
``TrainConfig`` fields its model is trained with on top of the run's (``train_overrides``,
e.g. ``{"noise": "learned"}`` or ``{"decoder": "mlp"}``); entries with equal needs share one
trained model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sklearn.base import BaseEstimator

from .factor import FactorAnalysisCovariance, PCACovariance
from .factor_auto import (
    FactorAnalysisAutoCovariance,
    FactorAnalysisMatchedCovariance,
    PCAAutoCovariance,
)
from .ledoit_wolf import LedoitWolfCovariance
from .nonlinear_shrinkage import NonlinearShrinkage
from .oracle import OracleCovariance
from .regime import RegimeConditional
from .sample import SampleCovariance
from .vae import (
    CVAEClosedFormCovariance,
    CVAECovariance,
    CVAEHeteroCovariance,
    VAEClosedFormCovariance,
    VAECovariance,
    VAEHeteroCovariance,
    VAEPosteriorCovariance,
    VAEShrunkCovariance,
)

ModelKind = Literal["vae", "cvae"]


@dataclass(frozen=True, order=True)
class ModelKey:
    """One trained model a window needs: its kind and its ``TrainConfig`` overrides."""

    kind: ModelKind
    overrides: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        """Readable name, e.g. ``vae`` or ``cvae[noise=learned]``."""
        extra = ",".join(f"{k}={v}" for k, v in self.overrides)
        return f"{self.kind}[{extra}]" if extra else self.kind

    @property
    def base(self) -> ModelKey:
        """The plain model of the same kind (what a warm start seeds a variant from)."""
        return ModelKey(self.kind)


@dataclass(frozen=True)
class EstimatorSpec:
    """What one estimator's fit needs.

    ``model``: the trained model it reads (None: it fits on the returns alone);
    ``train_overrides``: that model's ``TrainConfig`` fields on top of the run's (None: the
    class attribute ``train_overrides``); ``labels``: ``fit(X, y=regime labels)`` and a
    ``condition`` (the regime at the decision date); ``n_components``: takes the latent
    dimension k; ``needs_truth``: the true covariance (synthetic data only);
    ``singular_when_wide``: left out when N >= T - 1 (no min-variance portfolio);
    ``experiment``: reported by ``vae train``'s horse race.
    """

    cls: type[BaseEstimator]
    model: ModelKind | None = None
    train_overrides: Mapping[str, Any] | None = None
    labels: bool = False
    n_components: bool = False
    needs_truth: bool = False
    singular_when_wide: bool = False
    experiment: bool = True
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def model_key(self) -> ModelKey | None:
        if self.model is None:
            return None
        overrides = self.train_overrides
        if overrides is None:
            overrides = getattr(self.cls, "train_overrides", None) or {}
        return ModelKey(self.model, tuple(sorted(overrides.items())))


REGISTRY: dict[str, EstimatorSpec] = {
    "sample": EstimatorSpec(SampleCovariance, singular_when_wide=True),
    "ledoit_wolf": EstimatorSpec(LedoitWolfCovariance),
    "nonlinear_shrinkage": EstimatorSpec(NonlinearShrinkage),
    "pca": EstimatorSpec(PCACovariance, n_components=True),
    "factor_analysis": EstimatorSpec(FactorAnalysisCovariance, n_components=True),
    # k by Bai-Ng IC_p2 (the headline VAE chooses its own k; these are its fair rivals).
    "pca_auto": EstimatorSpec(PCAAutoCovariance),
    "factor_analysis_auto": EstimatorSpec(FactorAnalysisAutoCovariance),
    # The headline VAE: linear decoder, learned noise, trained to convergence with its own number
    # of latents, closed-form covariance (core.converged); FA with that same k beside it.
    "vae": EstimatorSpec(VAEClosedFormCovariance, model="vae"),
    "factor_analysis_matched": EstimatorSpec(FactorAnalysisMatchedCovariance, model="vae"),
    # The nonlinear-decoder VAE (the thesis: interactions a linear decoder misses), learned
    # noise, trained to convergence (Adam, the same stopping rule); Monte-Carlo systematic part.
    "vae_mlp": EstimatorSpec(
        VAEHeteroCovariance,
        model="vae",
        train_overrides={
            "noise": "learned",
            "decoder": "mlp",
            "fit": "converged",
            "epochs": 3000,
            "max_seconds": 30.0,
        },
    ),
    # The reference set-up (k = the run's latent_dim, fixed epochs, fixed noise, Monte Carlo).
    "vae_reference": EstimatorSpec(VAECovariance, model="vae"),
    "vae_posterior": EstimatorSpec(VAEPosteriorCovariance, model="vae"),
    "vae_shrunk": EstimatorSpec(VAEShrunkCovariance, model="vae"),
    # VAE with a learned per-stock noise variance: its own model, noise="learned".
    "vae_hetero": EstimatorSpec(VAEHeteroCovariance, model="vae"),
    # The headline CVAE: the headline VAE conditioned on the regime (conditional linear decoder,
    # regime loadings partially pooled, learned noise, EM to its optimum, k as the VAE's), closed-
    # form covariance for the decision date's regime (core.converged_cvae).
    "cvae": EstimatorSpec(CVAEClosedFormCovariance, model="cvae", labels=True),
    # The reference CVAE set-up (k = the run's latent_dim, fixed epochs, fixed noise, Monte Carlo).
    "cvae_reference": EstimatorSpec(CVAECovariance, model="cvae", labels=True),
    # CVAE with a learned per-stock noise variance: its own model, noise="learned". Not in the
    # experiment's horse race yet (the published regime table has no row for it).
    "cvae_hetero": EstimatorSpec(CVAEHeteroCovariance, model="cvae", labels=True, experiment=False),
    # Ledoit-Wolf on the training days of the current regime: the CVAE's classical rival.
    "ledoit_wolf_regime": EstimatorSpec(RegimeConditional, labels=True),
    # The true covariance: the floor every estimator is measured against.
    "oracle": EstimatorSpec(OracleCovariance, needs_truth=True),
}


def model_keys(names: list[str] | tuple[str, ...]) -> list[ModelKey]:
    """The distinct models ``names`` read, in first-use order."""
    keys: list[ModelKey] = []
    for name in names:
        key = REGISTRY[name].model_key
        if key is not None and key not in keys:
            keys.append(key)
    return keys


def model_names() -> dict[ModelKey, str]:
    """Each model's name: the registry name of the first estimator that reads it (the headline
    model is "vae", the reference set-up's "vae_reference", ...). The pipeline stores the model
    named N as the asset ``trained_N``."""
    names: dict[ModelKey, str] = {}
    for name, spec in REGISTRY.items():
        key = spec.model_key
        if key is not None and key not in names:
            names[key] = name
    return names
