"""The smallest eigenvalue of a covariance, without a full eigendecomposition at large N.

``np.linalg.eigvalsh`` reduces the whole matrix to tridiagonal form (~4/3 N^3 flops, half of
them memory-bound): a few seconds at N = 3000 on 2 cores, paid once per estimator per
partition. A symmetric positive-definite matrix instead gets one Cholesky factorisation
(N^3 / 3 flops, BLAS-3) and Lanczos on its inverse: the largest eigenvalue of S^-1 is
1 / lambda_min(S), found in a few dozen triangular solves (degenerate bottoms, as shrinkage
and factor models have, converge fastest). A matrix that is not positive definite falls back
to the exact full computation, so a failing PSD check still reports the true minimum.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

# Below this N the full eigvalsh is cheaper than the factorisation and the iterations.
LANCZOS_MIN_N = 1000


def min_eigenvalue(cov: np.ndarray) -> float:
    """The smallest eigenvalue of the symmetric matrix ``cov`` (to ~1e-10 relative)."""
    n = cov.shape[0]
    if n < LANCZOS_MIN_N:
        return float(np.linalg.eigvalsh(cov)[0])
    try:
        factor = scipy.linalg.cho_factor(cov, lower=True, check_finite=False)
    except np.linalg.LinAlgError:  # not positive definite: report the exact minimum
        return float(np.linalg.eigvalsh(cov)[0])
    inverse = LinearOperator(
        (n, n), matvec=lambda v: scipy.linalg.cho_solve(factor, v, check_finite=False), dtype=float
    )
    try:
        # fixed start vector: deterministic, so a re-materialised partition stores the same value
        top = eigsh(
            inverse,
            k=1,
            which="LA",
            v0=np.full(n, n**-0.5),
            tol=1e-10,
            maxiter=5000,
            return_eigenvectors=False,
        )
    except ArpackNoConvergence:
        return float(np.linalg.eigvalsh(cov)[0])
    return float(1.0 / top[0])
