"""The oracle: a known (true) covariance, used as the lower bound of the horse race."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from ._validation import ArrayLike, as_returns, check_covariance


class OracleCovariance(BaseEstimator):
    """Returns the given ``covariance`` whatever the data (validated symmetric PSD on fit).

    ``X`` is optional and, when given, only checked for a matching number of columns.
    """

    def __init__(self, covariance: ArrayLike | None = None) -> None:
        self.covariance = covariance

    def fit(self, X: ArrayLike | None = None, y: object = None) -> OracleCovariance:
        if self.covariance is None:
            raise ValueError("OracleCovariance: no covariance given; pass covariance=<N x N>")
        cov = check_covariance(self.covariance, name=type(self).__name__)
        if X is not None:
            n = as_returns(X, name=type(self).__name__, min_rows=1).shape[1]
            if n != cov.shape[0]:
                raise ValueError(
                    f"OracleCovariance: covariance is {cov.shape[0]} x {cov.shape[0]} "
                    f"but X has {n} columns"
                )
        self.covariance_ = np.array(cov, dtype=np.float64)
        return self
