"""Sample covariance (the unshrunk baseline)."""

from __future__ import annotations

from sklearn.base import BaseEstimator

from ._validation import ArrayLike, as_returns, symmetrise


class SampleCovariance(BaseEstimator):
    """Demeaned sample covariance ``X_c' X_c / (T - ddof)``.

    ``ddof=1`` (the unbiased ``np.cov``) by default. sklearn's ``EmpiricalCovariance`` uses
    ``ddof=0``; the choice only rescales the matrix, so min-variance weights are identical.
    Singular when N >= T (use a shrinkage estimator there).
    """

    def __init__(self, ddof: int = 1) -> None:
        self.ddof = ddof

    def fit(self, X: ArrayLike, y: object = None) -> SampleCovariance:
        arr = as_returns(X, name=type(self).__name__, min_rows=self.ddof + 1)
        self.location_ = arr.mean(axis=0)
        xc = arr - self.location_
        self.covariance_ = symmetrise(xc.T @ xc / (arr.shape[0] - self.ddof))
        return self
