"""Analytical nonlinear shrinkage (Ledoit & Wolf 2020, Annals of Statistics 48(5)).

Hand-written: no well-maintained Python library ships this estimator (scikit-learn has only
linear shrinkage; the small PyPI ports are unmaintained), and the formula is ~30 lines.
It keeps the sample eigenvectors and replaces each sample eigenvalue lambda_i by
``d_i = lambda_i / |1 - c - c lambda_i m(lambda_i)|^2`` (the oracle nonlinear shrinkage), where
the Stieltjes-transform term is estimated with an adaptive Epanechnikov kernel density ``f`` of the
sample spectrum and its Hilbert transform ``Hf`` (bandwidth ``h = n**(-1/3)`` times lambda_j).
For N > n the N - n null sample eigenvalues get one common value from the kernel estimate of
the Hilbert transform at zero (the paper's separate formula for the null space).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from ._validation import ArrayLike, as_returns, symmetrise

_SQRT5 = np.sqrt(5.0)
# The kernel estimate needs h = n**(-1/3) < 1/sqrt(5), i.e. an effective sample size n >= 12.
MIN_EFFECTIVE_T = 12


# Beyond |x| = 20 the closed form cancels catastrophically: its two terms grow like x and
# nearly cancel to ~-1/(pi x), and real spectra reach x ~ 1e7 (a crisis market eigenvalue
# over a near-singular one), which turned the spike's Hilbert transform from -1.9 into -519
# and shrank the largest eigenvalue 0.17 -> 3e-6. Far from the support the transform
# (1/pi) PV int K(u) / (u - x) du of a unit-variance kernel is -(1/pi) sum_k m_2k / x^(2k+1); Epanechnikov's m2 = 1, m4 = 15/7
# (next term m6 / x^7 with m6 = 125/21: relative error < 1e-7 at |x| = 20).
_FAR = 20.0


def _epanechnikov_hilbert(x: np.ndarray) -> np.ndarray:
    """Hilbert transform of the unit-variance Epanechnikov kernel (support +-sqrt 5) at ``x``."""
    far = np.abs(x) > _FAR
    xn = np.where(far, 0.0, x)  # the closed form only where it is accurate
    with np.errstate(divide="ignore", invalid="ignore"):
        log_term = np.log(np.abs((_SQRT5 - xn) / (_SQRT5 + xn)))
        near = (-3.0 / (10.0 * np.pi)) * xn + (3.0 / (4.0 * _SQRT5 * np.pi)) * (
            1.0 - xn**2 / 5.0
        ) * log_term
    # At |x| = sqrt(5) the second term is 0 * log(0): its limit is 0.
    near = np.where(np.isfinite(near), near, (-3.0 / (10.0 * np.pi)) * xn)
    xf = np.where(far, x, _FAR)
    inv = 1.0 / xf
    inv2 = inv * inv
    series = -(inv / np.pi) * (1.0 + inv2 * (1.0 + inv2 * 15.0 / 7.0))
    return np.where(far, series, near)


def shrunk_eigenvalues(lam: np.ndarray, n: int) -> np.ndarray:
    """Nonlinearly shrunk eigenvalues for ascending sample eigenvalues ``lam`` (length p).

    ``n`` is the effective sample size (T - 1 after demeaning).
    """
    p = lam.shape[0]
    # Keep the min(p, n) non-null eigenvalues (the largest ones); guard tiny rounding negatives.
    top = lam[max(0, p - n) :]
    top = np.maximum(top, np.finfo(float).eps * max(float(top[-1]), np.finfo(float).tiny))
    h = n ** (-1.0 / 3.0)
    bw = h * top  # locally adaptive bandwidth, one per kernel centre j (columns)
    x = (top[:, None] - top[None, :]) / bw[None, :]
    # Epanechnikov density estimate of the sample spectrum at each lambda_i.
    f = (3.0 / (4.0 * _SQRT5)) * np.mean(np.maximum(1.0 - x**2 / 5.0, 0.0) / bw[None, :], axis=1)
    hilbert = _epanechnikov_hilbert(x)
    hf = np.mean(hilbert / bw[None, :], axis=1)
    if p <= n:
        c = p / n
        return top / ((np.pi * c * top * f) ** 2 + (1.0 - c - np.pi * c * top * hf) ** 2)
    # N > n: non-null part, then the common value for the p - n null eigenvalues.
    d_top = top / (np.pi**2 * top**2 * (f**2 + hf**2))
    hf0 = (
        (1.0 / np.pi)
        * (
            3.0 / (10.0 * h**2)
            + 3.0
            / (4.0 * _SQRT5 * h)
            * (1.0 - 1.0 / (5.0 * h**2))
            * np.log((1.0 + _SQRT5 * h) / (1.0 - _SQRT5 * h))
        )
        * np.mean(1.0 / top)
    )
    d_null = 1.0 / (np.pi * (p - n) / n * hf0)
    return np.concatenate([np.full(p - n, d_null), d_top])


class NonlinearShrinkage(BaseEstimator):
    """Ledoit-Wolf (2020) analytical nonlinear shrinkage; valid for N < T and N >= T.

    Args:
        demean: subtract the column means first (effective sample size T - 1), the default.

    Attributes: ``covariance_``, ``eigenvalues_`` (shrunk, ascending), ``location_``.
    """

    def __init__(self, demean: bool = True) -> None:
        self.demean = demean

    def fit(self, X: ArrayLike, y: object = None) -> NonlinearShrinkage:
        arr = as_returns(X, name=type(self).__name__)
        t = arr.shape[0]
        n = t - 1 if self.demean else t
        if n < MIN_EFFECTIVE_T:
            raise ValueError(
                f"NonlinearShrinkage: effective sample size {n} < {MIN_EFFECTIVE_T} "
                "(the kernel bandwidth n**(-1/3) must be below 1/sqrt(5)); use more days"
            )
        self.location_ = arr.mean(axis=0) if self.demean else np.zeros(arr.shape[1])
        xc = arr - self.location_
        p = arr.shape[1]
        if 2 * n > p:  # N < 2(T - 1): the N x N eigendecomposition is the cheaper route
            lam, vecs = np.linalg.eigh(xc.T @ xc / n)  # ascending
            d = shrunk_eigenvalues(lam, n)
            self.eigenvalues_ = d
            self.covariance_ = symmetrise((vecs * d) @ vecs.T)
            return self
        # N >= 2n: the n non-null eigenpairs from the thin SVD of the T x N data (O(N T^2), not
        # an O(N^3) eigendecomposition), and the N - n null directions share one shrunk value,
        # so cov = d_null I + U (diag(d_top) - d_null) U' whatever basis the null space has.
        _, s, vt = np.linalg.svd(xc, full_matrices=False)  # descending
        vecs_top = vt[:n][::-1].T  # N x n, ascending like eigh
        lam = np.concatenate([np.zeros(p - n), (s[:n] ** 2 / n)[::-1]])
        d = shrunk_eigenvalues(lam, n)
        self.eigenvalues_ = d
        cov = (vecs_top * (d[p - n :] - d[0])) @ vecs_top.T
        cov.flat[:: p + 1] += d[0]
        self.covariance_ = symmetrise(cov)
        return self
