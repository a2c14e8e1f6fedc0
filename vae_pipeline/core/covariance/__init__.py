"""Covariance estimators (scikit-learn convention) and their registry.

Every estimator subclasses ``sklearn.base.BaseEstimator``, keeps hyper-parameters in ``__init__``
only, and ``fit(X, y=None)`` sets ``covariance_`` (N x N float64, symmetric PSD) from a T x N
returns panel (DataFrame or ndarray). ``y`` carries regime labels where an estimator uses them.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator

from .factor import FactorAnalysisCovariance, PCACovariance
from .ledoit_wolf import LedoitWolfCovariance
from .nonlinear_shrinkage import NonlinearShrinkage
from .oracle import OracleCovariance
from .regime import RegimeConditional, regime_conditional
from .sample import SampleCovariance
from .vae import (
    CVAECovariance,
    CVAEHeteroCovariance,
    VAECovariance,
    VAEHeteroCovariance,
    VAEPosteriorCovariance,
    VAEShrunkCovariance,
    model_noise_variance,
)

ESTIMATORS: dict[str, type[BaseEstimator]] = {
    "sample": SampleCovariance,
    "ledoit_wolf": LedoitWolfCovariance,
    "nonlinear_shrinkage": NonlinearShrinkage,
    "pca": PCACovariance,
    "factor_analysis": FactorAnalysisCovariance,
    "vae": VAECovariance,
    "vae_posterior": VAEPosteriorCovariance,
    "vae_shrunk": VAEShrunkCovariance,
    # VAE with a learned per-stock noise variance (trains its own model: noise="learned").
    "vae_hetero": VAEHeteroCovariance,
    "cvae": CVAECovariance,
    # CVAE with a learned per-stock noise variance (trains its own model: noise="learned").
    "cvae_hetero": CVAEHeteroCovariance,
    "oracle": OracleCovariance,
    # Ledoit-Wolf on the training days of the current regime: the CVAE's classical rival.
    "ledoit_wolf_regime": RegimeConditional,
}

# Estimators whose fit needs regime labels: fit(X, y=labels).
NEEDS_LABELS = frozenset({"cvae", "cvae_hetero", "ledoit_wolf_regime"})


def make_estimator(name: str, **params: Any) -> BaseEstimator:
    """A fresh estimator from the registry, e.g. ``make_estimator("pca", n_components=3)``."""
    try:
        cls = ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown estimator {name!r}; known: {sorted(ESTIMATORS)}") from None
    return cls(**params)


__all__ = [
    "ESTIMATORS",
    "NEEDS_LABELS",
    "CVAECovariance",
    "CVAEHeteroCovariance",
    "FactorAnalysisCovariance",
    "LedoitWolfCovariance",
    "NonlinearShrinkage",
    "OracleCovariance",
    "PCACovariance",
    "RegimeConditional",
    "SampleCovariance",
    "VAECovariance",
    "VAEHeteroCovariance",
    "VAEPosteriorCovariance",
    "VAEShrunkCovariance",
    "make_estimator",
    "model_noise_variance",
    "regime_conditional",
]
