"""Covariances implied by a trained VAE / CVAE (see DESIGN.md section 4).

Reference ("vae", "cvae"): Monte-Carlo systematic part -- decode z ~ N(0, I) with a seeded
generator, de-standardise, sample covariance -- plus the diagonal of the per-stock variance of the
training reconstruction residual (in return units). Omitting that idiosyncratic part makes the
matrix near-singular (rank k) and the min-variance portfolio over-levers.

Improved variants, kept under their own names so the reference stays as specified:
- "vae_posterior": the systematic part decodes the *aggregated posterior* (each training day's
  posterior mean plus its posterior noise) instead of the prior, so a latent the KL term has not
  pushed to unit variance still gets its fitted scale.
- "vae_shrunk": reference systematic part + a Ledoit-Wolf-shrunk full residual covariance instead
  of its diagonal (keeps the residual correlation the k latents miss, e.g. sector co-movement).

``trained`` (a ``TrainResult``) skips training: the pipeline trains once and reuses the model via
:meth:`VAECovariance.from_trained`. When it is set, the training hyper-parameters are ignored.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from vae_pipeline.core.training import TrainConfig, TrainResult, train_vae

from ._validation import ArrayLike, as_returns, check_n_components, symmetrise
from .ledoit_wolf import ledoit_wolf_shrunk
from .regime import as_labels, regime_rows


def _decode(result: TrainResult, z: torch.Tensor, condition: int | None) -> np.ndarray:
    """Decode latent draws (standardised) and map them back to return units (float64)."""
    c = None
    if condition is not None:
        c = torch.zeros(z.shape[0], result.n_conditions)
        c[:, condition] = 1.0
    model = result.model.eval()
    with torch.no_grad():
        xhat = model.decode(z, c).numpy()
    return result.standardiser.inverse_transform(xhat.astype(np.float64))


class VAECovariance(BaseEstimator):
    """Reference VAE covariance: prior Monte-Carlo systematic part + diagonal residual variance.

    Attributes after fit: ``covariance_``, ``systematic_`` (N x N), ``idiosyncratic_`` (N x N),
    ``result_`` (the ``TrainResult`` used).
    """

    def __init__(
        self,
        latent_dim: int = 4,
        beta: float = 1.0,
        epochs: int = 300,
        lr: float | None = None,
        hidden: int = 64,
        decoder: str = "linear",
        n_samples: int = 2000,
        seed: int = 42,
        device: str = "auto",
        trained: TrainResult | None = None,
    ) -> None:
        self.latent_dim = latent_dim
        self.beta = beta
        self.epochs = epochs
        self.lr = lr
        self.hidden = hidden
        self.decoder = decoder
        self.n_samples = n_samples
        self.seed = seed
        self.device = device
        self.trained = trained

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_trained(
        cls,
        result: TrainResult,
        X: ArrayLike,
        y: object = None,
        n_samples: int = 2000,
        seed: int = 42,
        **params: Any,
    ) -> VAECovariance:
        """Fitted estimator from an already trained model (no training); ``X`` = its window."""
        cfg = result.config
        est = cls(
            latent_dim=cfg.latent_dim,
            beta=cfg.beta,
            epochs=cfg.epochs,
            lr=cfg.lr,
            hidden=cfg.hidden,
            decoder=cfg.decoder,
            n_samples=n_samples,
            seed=seed,
            device=cfg.device,
            trained=result,
            **params,
        )
        return est.fit(X, y)

    def train_config(self) -> TrainConfig:
        """The :class:`TrainConfig` this estimator trains with (``lr=None`` -> its default)."""
        kwargs = dict(
            latent_dim=self.latent_dim,
            beta=self.beta,
            epochs=self.epochs,
            hidden=self.hidden,
            decoder=self.decoder,
            seed=self.seed,
            device=self.device,
        )
        if self.lr is not None:
            kwargs["lr"] = self.lr
        return TrainConfig(**kwargs).validate()

    # -- fitting ------------------------------------------------------------------------------
    def _check(self, X: ArrayLike) -> np.ndarray:
        name = type(self).__name__
        arr = as_returns(X, name=name)
        if int(self.n_samples) != self.n_samples or self.n_samples < 2:
            raise ValueError(f"{name}: n_samples must be an integer >= 2, got {self.n_samples}")
        k = self.trained.config.latent_dim if self.trained is not None else self.latent_dim
        check_n_components(k, arr.shape[1], name=name)
        if self.trained is not None and self.trained.model.n_inputs != arr.shape[1]:
            raise ValueError(
                f"{name}: the trained model has {self.trained.model.n_inputs} inputs "
                f"but X has {arr.shape[1]} columns"
            )
        return arr

    def _result(self, X: ArrayLike, labels: np.ndarray | None) -> TrainResult:
        if self.trained is not None:
            return self.trained
        return train_vae(X, self.train_config(), conditions=labels)

    def fit(self, X: ArrayLike, y: object = None) -> VAECovariance:
        arr = self._check(X)
        result = self._result(X, None)
        if result.n_conditions:
            raise ValueError(f"{type(self).__name__}: got a CVAE; use CVAECovariance")
        residuals = arr - result.reconstruct(X)
        self._finish(result, self._systematic(result, X, None, None), residuals)
        return self

    def _finish(self, result: TrainResult, systematic: np.ndarray, residuals: np.ndarray) -> None:
        self.result_ = result
        self.systematic_ = symmetrise(systematic)
        self.idiosyncratic_ = self._residual_covariance(residuals)
        self.covariance_ = symmetrise(self.systematic_ + self.idiosyncratic_)

    # -- the two parts (overridden by the variants) -------------------------------------------
    def _systematic(
        self,
        result: TrainResult,
        X: ArrayLike,
        condition: int | None,
        labels: np.ndarray | None,
    ) -> np.ndarray:
        """Sample covariance of decoded prior draws z ~ N(0, I) (seeded, return units)."""
        gen = torch.Generator().manual_seed(int(self.seed))
        z = torch.randn(int(self.n_samples), result.model.latent_dim, generator=gen)
        return np.cov(_decode(result, z, condition), rowvar=False)

    def _residual_covariance(self, residuals: np.ndarray) -> np.ndarray:
        """Diagonal of the per-stock residual variance (ddof 1)."""
        return np.diag(residuals.var(axis=0, ddof=1))


class VAEPosteriorCovariance(VAECovariance):
    """"vae_posterior": systematic part from the aggregated posterior instead of the prior.

    Decodes ``mu_t + sigma_t * eps`` for every training day t (cycled to at least ``n_samples``
    draws), so the systematic covariance reflects the latent scale the encoder actually uses.
    """

    def _systematic(self, result, X, condition, labels):
        x = torch.from_numpy(result.standardiser.transform(X))
        with torch.no_grad():
            mu, logvar = result.model.eval().encode(x)
        t = mu.shape[0]
        idx = torch.arange(max(int(self.n_samples), t)) % t
        gen = torch.Generator().manual_seed(int(self.seed))
        eps = torch.randn(idx.numel(), mu.shape[1], generator=gen)
        z = mu[idx] + eps * torch.exp(0.5 * logvar[idx])
        return np.cov(_decode(result, z, None), rowvar=False)


class VAEShrunkCovariance(VAECovariance):
    """"vae_shrunk": reference systematic part + Ledoit-Wolf-shrunk full residual covariance."""

    def _residual_covariance(self, residuals: np.ndarray) -> np.ndarray:
        return ledoit_wolf_shrunk(residuals - residuals.mean(axis=0))[0]


class CVAECovariance(VAECovariance):
    """Conditional VAE covariance for one regime; ``fit(X, y=labels)``.

    ``condition=None`` -> the label of the last training row (the regime at the decision date).
    The systematic part decodes prior draws with that one-hot condition; the residual variance
    comes from the training days of that regime (all days if fewer than ``min_regime_days``).
    ``n_conditions=None`` -> ``max(label) + 1`` (at least 2), as in ``train_vae``.
    Extra attributes: ``condition_`` (the regime used), ``n_days_used_``.
    """

    def __init__(
        self,
        latent_dim: int = 4,
        beta: float = 1.0,
        epochs: int = 300,
        lr: float | None = None,
        hidden: int = 64,
        decoder: str = "linear",
        n_samples: int = 2000,
        seed: int = 42,
        device: str = "auto",
        trained: TrainResult | None = None,
        condition: int | None = None,
        n_conditions: int | None = None,
        min_regime_days: int = 30,
    ) -> None:
        super().__init__(
            latent_dim=latent_dim,
            beta=beta,
            epochs=epochs,
            lr=lr,
            hidden=hidden,
            decoder=decoder,
            n_samples=n_samples,
            seed=seed,
            device=device,
            trained=trained,
        )
        self.condition = condition
        self.n_conditions = n_conditions
        self.min_regime_days = min_regime_days

    def _result(self, X: ArrayLike, labels: np.ndarray | None) -> TrainResult:
        if self.trained is not None:
            return self.trained
        return train_vae(X, self.train_config(), conditions=labels, n_conditions=self.n_conditions)

    def fit(self, X: ArrayLike, y: object = None) -> CVAECovariance:
        name = type(self).__name__
        arr = self._check(X)
        labels = as_labels(y, arr.shape[0], name=name)
        result = self._result(X, labels)
        if not result.n_conditions:
            raise ValueError(f"{name}: got an unconditional VAE; use VAECovariance")
        cond = int(labels[-1]) if self.condition is None else int(self.condition)
        if not 0 <= cond < result.n_conditions:
            raise ValueError(f"{name}: condition {cond} outside [0, {result.n_conditions})")
        rows = regime_rows(labels, cond, self.min_regime_days)
        residuals = (arr - result.reconstruct(X, conditions=labels))[rows]
        self.condition_, self.n_days_used_ = cond, int(rows.sum())
        self._finish(result, self._systematic(result, X, cond, labels), residuals)
        return self
