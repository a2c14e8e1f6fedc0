"""Stage 2a of the daily refit: every registry estimator's covariance of the window.

Estimation never trains: model-based estimators are built on the models :func:`fit_models`
returned. Which estimators run is read off the registry (what each one needs) unless named.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from vae_pipeline.core.covariance import REGISTRY, EstimatorSpec

from .models import FittedModels


def _missing_needs(
    spec: EstimatorSpec,
    window: pd.DataFrame,
    models: FittedModels | None,
    regimes: np.ndarray | None,
    oracle: np.ndarray | None,
) -> str | None:
    """Why ``spec`` cannot be served from these inputs (None: it can)."""
    if spec.singular_when_wide and window.shape[1] >= window.shape[0] - 1:
        return "N >= T - 1: singular, so it has no min-variance portfolio"
    key = spec.model_key
    if key is not None and (models is None or key not in models):
        return f"no trained {key.label} model"
    if spec.labels and regimes is None:
        return "no regime labels"
    if spec.needs_truth and oracle is None:
        return "no true covariance"
    return None


def servable_estimators(
    window: pd.DataFrame,
    models: FittedModels | None = None,
    regimes: np.ndarray | None = None,
    oracle: np.ndarray | None = None,
    names: Iterable[str] | None = None,
) -> list[str]:
    """The estimators to run, in registry order. ``names=None``: every registry entry these
    inputs can serve; named ones must be servable (``ValueError`` otherwise), except that the
    singular sample covariance is always left out."""
    if names is None:
        return [
            n
            for n, s in REGISTRY.items()
            if _missing_needs(s, window, models, regimes, oracle) is None
        ]
    chosen = []
    for name in names:
        if name not in REGISTRY:
            raise ValueError(f"unknown estimator {name!r}; known: {sorted(REGISTRY)}")
        why = _missing_needs(REGISTRY[name], window, models, regimes, oracle)
        if why is None:
            chosen.append(name)
        elif not REGISTRY[name].singular_when_wide:
            raise ValueError(f"cannot estimate {name!r}: {why}")
    return chosen


def make_fitted_estimator(
    name: str,
    window: pd.DataFrame,
    k: int,
    models: FittedModels | None = None,
    regimes: np.ndarray | None = None,
    oracle: np.ndarray | None = None,
    condition: int | None = None,
    n_samples: int = 2000,
    seed: int = 42,
) -> BaseEstimator:
    """Registry estimator ``name`` fitted on ``window``. ``condition``: the regime at the
    decision date (None: the last window day's label)."""
    spec = REGISTRY[name]
    params = dict(spec.params)
    if spec.n_components:
        params["n_components"] = k
    if spec.model_key is not None:
        assert models is not None
        params.update(trained=models[spec.model_key], n_samples=n_samples, seed=seed)
    if spec.labels and condition is not None:
        params["condition"] = int(condition)
    if spec.needs_truth:
        params["covariance"] = oracle
    est = spec.cls(**params)
    if spec.labels:
        return est.fit(window, np.asarray(regimes))
    return est.fit(window)


def estimate_covariances(
    window: pd.DataFrame,
    k: int,
    models: FittedModels | None = None,
    regimes: np.ndarray | None = None,
    oracle: np.ndarray | None = None,
    condition: int | None = None,
    n_samples: int = 2000,
    seed: int = 42,
    names: Iterable[str] | None = None,
) -> dict[str, np.ndarray]:
    """Covariances (N x N, in the column order of ``window``) by estimator name, for every
    estimator of :func:`servable_estimators`."""
    return {
        name: make_fitted_estimator(
            name, window, k, models, regimes, oracle, condition, n_samples, seed
        ).covariance_
        for name in servable_estimators(window, models, regimes, oracle, names)
    }
