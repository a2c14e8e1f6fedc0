"""Covariance estimators (scikit-learn convention) and their registry.

Every estimator subclasses ``sklearn.base.BaseEstimator``, keeps hyper-parameters in ``__init__``
only, and ``fit(X, y=None)`` sets ``covariance_`` (N x N float64, symmetric PSD) from a T x N
returns panel (DataFrame or ndarray). ``y`` carries regime labels where an estimator uses them.
What each estimator needs (a trained model, labels, the truth) is declared in ``registry``.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator

from .factor import FactorAnalysisCovariance, PCACovariance
from .factor_auto import (
    FactorAnalysisAutoCovariance,
    FactorAnalysisMatchedCovariance,
    PCAAutoCovariance,
    bai_ng_ic_p2,
)
from .ledoit_wolf import LedoitWolfCovariance
from .nonlinear_shrinkage import NonlinearShrinkage
from .oracle import OracleCovariance
from .regime import RegimeConditional, regime_conditional
from .registry import REGISTRY, EstimatorSpec, ModelKey, model_keys, model_names
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
    model_noise_variance,
)

# The classes by name, and the names whose fit takes regime labels: both read off the registry.
ESTIMATORS: dict[str, type[BaseEstimator]] = {name: spec.cls for name, spec in REGISTRY.items()}
NEEDS_LABELS = frozenset(name for name, spec in REGISTRY.items() if spec.labels)


def make_estimator(name: str, **params: Any) -> BaseEstimator:
    """A fresh estimator from the registry, e.g. ``make_estimator("pca", n_components=3)``."""
    try:
        cls = ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown estimator {name!r}; known: {sorted(ESTIMATORS)}") from None
    return cls(**params)


__all__ = [
    "ESTIMATORS",
    "REGISTRY",
    "EstimatorSpec",
    "ModelKey",
    "model_keys",
    "model_names",
    "NEEDS_LABELS",
    "CVAEClosedFormCovariance",
    "CVAECovariance",
    "CVAEHeteroCovariance",
    "FactorAnalysisAutoCovariance",
    "FactorAnalysisCovariance",
    "FactorAnalysisMatchedCovariance",
    "PCAAutoCovariance",
    "VAEClosedFormCovariance",
    "bai_ng_ic_p2",
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
