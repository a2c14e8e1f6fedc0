"""PCA and factor analysis with the number of factors chosen from the data: the headline VAE's
fair rivals (it chooses its own number of latents too).

The criterion is Bai & Ng (2002)'s IC_p2, the standard consistent criterion for approximate
factor models when N and T are both large: ``k = argmin_j log V(j) + j (N + T) / (N T)
log min(N, T)`` with ``V(j)`` the mean residual variance of the z-scored panel after its top j
principal components, ``j <= k_max`` (``min(32, N // 4)``, the VAE's maximum). Hand-written
because neither scikit-learn nor scipy ships it (it is one eigen-decomposition). The choice is a
documented standard rather than the VAE's held-out ELBO, which for factor analysis would take
up to k_max FA fits per window.

``FactorAnalysisMatchedCovariance`` is the other fair rival: factor analysis with exactly the
number of latents the headline VAE chose on the same window (it reads that model).
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator

from vae_pipeline.core.converged import HEADLINE_TRAIN, default_max_latents
from vae_pipeline.core.training import TrainConfig, train_vae

from ._validation import ArrayLike, as_returns
from .factor import FactorAnalysisCovariance, PCACovariance


def bai_ng_ic_p2(X: ArrayLike, k_max: int | None = None) -> int:
    """Bai-Ng IC_p2 number of factors of a T x N panel (z-scored), between 1 and ``k_max``."""
    arr = as_returns(X, name="bai_ng_ic_p2")
    t, n = arr.shape
    k_max = default_max_latents(n, t) if k_max is None else int(k_max)
    z = (arr - arr.mean(axis=0)) / arr.std(axis=0)
    eig = np.sort(np.linalg.eigvalsh(z.T @ z / t) if n <= t else np.linalg.eigvalsh(z @ z.T / t))
    eig = eig[::-1]
    total = n  # trace of the correlation matrix
    resid = total - np.concatenate([[0.0], np.cumsum(eig[:k_max])])
    v = np.maximum(resid, 1e-12) / n
    j = np.arange(k_max + 1)
    ic = np.log(v) + j * (n + t) / (n * t) * np.log(min(n, t))
    return max(1, int(np.argmin(ic)))


class _AutoK(BaseEstimator):
    """Fit ``base`` with the IC_p2 number of factors; ``n_components_`` is the one chosen."""

    base: type[BaseEstimator]

    def __init__(self, k_max: int | None = None) -> None:
        self.k_max = k_max

    def fit(self, X: ArrayLike, y: object = None):
        self.n_components_ = bai_ng_ic_p2(X, self.k_max)
        est = self.base(n_components=self.n_components_).fit(X)
        self.loadings_, self.idiosyncratic_var_ = est.loadings_, est.idiosyncratic_var_
        self.covariance_ = est.covariance_
        return self


class PCAAutoCovariance(_AutoK):
    """ "pca_auto": :class:`PCACovariance` with k by Bai-Ng IC_p2."""

    base = PCACovariance


class FactorAnalysisAutoCovariance(_AutoK):
    """ "factor_analysis_auto": :class:`FactorAnalysisCovariance` with k by Bai-Ng IC_p2."""

    base = FactorAnalysisCovariance


class FactorAnalysisMatchedCovariance(BaseEstimator):
    """ "factor_analysis_matched": factor analysis with the headline VAE's number of latents on
    the same window (``trained``: that model; ``n_samples`` / ``seed`` are accepted and unused,
    as the refit passes them to every model-based estimator)."""

    train_overrides = dict(HEADLINE_TRAIN)

    def __init__(self, trained=None, n_samples: int = 2000, seed: int = 42) -> None:
        self.trained = trained
        self.n_samples = n_samples
        self.seed = seed

    def fit(self, X: ArrayLike, y: object = None):
        as_returns(X, name=type(self).__name__)
        trained = self.trained
        if trained is None:  # standalone: train the headline model on X first
            config = TrainConfig(seed=self.seed, **self.train_overrides)
            trained = train_vae(X, config)
        self.n_components_ = int(trained.config.latent_dim)
        est = FactorAnalysisCovariance(n_components=self.n_components_).fit(X)
        self.loadings_, self.idiosyncratic_var_ = est.loadings_, est.idiosyncratic_var_
        self.covariance_ = est.covariance_
        return self
