"""Input checks shared by the covariance estimators (one place, one wording for the errors)."""

from __future__ import annotations

import numpy as np
import pandas as pd

ArrayLike = pd.DataFrame | np.ndarray


def as_returns(X: ArrayLike, *, name: str, min_rows: int = 2) -> np.ndarray:
    """A T x N float64 copy of ``X`` after checking shape, length and finiteness."""
    arr = X.to_numpy(dtype=np.float64) if isinstance(X, pd.DataFrame) else np.asarray(X, np.float64)
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D T x N returns panel, got shape {arr.shape}")
    t, n = arr.shape
    if n < 1:
        raise ValueError(f"{name}: the returns panel has no columns")
    if t < min_rows:
        raise ValueError(f"{name}: need at least {min_rows} rows (days), got T={t}")
    if not np.isfinite(arr).all():
        bad = int((~np.isfinite(arr)).sum())
        raise ValueError(f"{name}: returns contain {bad} NaN/inf values; clean the panel first")
    return arr


def check_n_components(k: int, n_features: int, *, name: str) -> int:
    """A k-factor model needs 1 <= k < N (k = N leaves no idiosyncratic part to estimate)."""
    if int(k) != k or k < 1:
        raise ValueError(f"{name}: n_components must be a positive integer, got {k!r}")
    if k >= n_features:
        raise ValueError(
            f"{name}: n_components={k} must be smaller than the number of stocks N={n_features}"
        )
    return int(k)


def symmetrise(cov: np.ndarray) -> np.ndarray:
    """Exact symmetry (eigen-reconstructions and matmuls leave ~1e-17 asymmetry)."""
    return 0.5 * (cov + cov.T)


def check_covariance(cov: ArrayLike, *, name: str, tol: float = 1e-8) -> np.ndarray:
    """Validate a given matrix as a symmetric PSD covariance; return a symmetrised float64 copy."""
    arr = (
        cov.to_numpy(dtype=np.float64) if isinstance(cov, pd.DataFrame) else np.asarray(cov, float)
    )
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name}: covariance must be a square matrix, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: covariance contains NaN/inf")
    scale = max(float(np.abs(arr).max()), np.finfo(float).tiny)
    if np.abs(arr - arr.T).max() > tol * scale:
        raise ValueError(f"{name}: covariance is not symmetric")
    arr = symmetrise(arr)
    if arr.shape[0] and np.linalg.eigvalsh(arr)[0] < -tol * scale:
        raise ValueError(f"{name}: covariance is not positive semi-definite")
    return arr
