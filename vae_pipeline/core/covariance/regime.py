"""Regime-conditional wrapper: fit any estimator on only the training days of one regime.

The classical counterpart of the CVAE: it sees the same regime labels, so a CVAE win over it is
about the model, not about having access to the labels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from ._validation import ArrayLike, as_returns
from .ledoit_wolf import LedoitWolfCovariance


def regime_rows(labels: np.ndarray, condition: int | None, min_days: int) -> np.ndarray:
    """Boolean row mask for ``condition`` (default: the last label); all rows if too few days."""
    current = int(labels[-1]) if condition is None else int(condition)
    mask = labels == current
    if mask.sum() < min_days:
        return np.ones_like(mask, dtype=bool)
    return mask


def as_labels(y: object, n_rows: int, *, name: str) -> np.ndarray:
    """Integer regime labels (length T) from a Series / array; raise when missing or misaligned."""
    if y is None:
        raise ValueError(f"{name}: needs regime labels: fit(X, y=labels)")
    labels = np.asarray(y.to_numpy() if isinstance(y, pd.Series | pd.DataFrame) else y).ravel()
    if labels.shape[0] != n_rows:
        raise ValueError(f"{name}: {labels.shape[0]} labels for {n_rows} rows of returns")
    if not np.isfinite(labels.astype(float)).all():
        raise ValueError(f"{name}: regime labels contain NaN")
    if (labels.astype(float) != labels.astype(int)).any() or labels.min() < 0:
        raise ValueError(f"{name}: regime labels must be non-negative integers")
    return labels.astype(int)


class RegimeConditional(BaseEstimator):
    """Fit ``estimator`` (default Ledoit-Wolf) on the training days whose label is ``condition``.

    ``condition=None`` uses the label of the last training row (the regime at the decision date).
    With fewer than ``min_days`` such days it falls back to all days (``used_all_days_`` is True).
    """

    def __init__(
        self,
        estimator: BaseEstimator | None = None,
        condition: int | None = None,
        min_days: int = 30,
    ) -> None:
        self.estimator = estimator
        self.condition = condition
        self.min_days = min_days

    def fit(self, X: ArrayLike, y: object = None) -> RegimeConditional:
        arr = as_returns(X, name=type(self).__name__)
        labels = as_labels(y, arr.shape[0], name=type(self).__name__)
        mask = regime_rows(labels, self.condition, self.min_days)
        base = LedoitWolfCovariance() if self.estimator is None else self.estimator
        rows = X.loc[mask] if isinstance(X, pd.DataFrame) else arr[mask]
        self.estimator_ = clone(base).fit(rows)
        self.covariance_ = self.estimator_.covariance_
        self.n_days_used_ = int(mask.sum())
        self.used_all_days_ = bool(mask.all())
        return self


def regime_conditional(
    estimator: BaseEstimator | None = None, condition: int | None = None, min_days: int = 30
) -> RegimeConditional:
    """Convenience constructor (``regime_conditional()`` is the "ledoit_wolf_regime" estimator)."""
    return RegimeConditional(estimator=estimator, condition=condition, min_days=min_days)
