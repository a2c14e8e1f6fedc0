"""Covariances implied by a trained VAE / CVAE (see docs/architecture.md: numerics).

Reference ("vae_reference", "cvae_reference"): Monte-Carlo systematic part -- decode z ~ N(0, I) with a seeded
generator, de-standardise, sample covariance -- plus the diagonal of the per-stock variance of the
training reconstruction residual (in return units). Omitting that idiosyncratic part makes the
matrix near-singular (rank k) and the min-variance portfolio over-levers. The CVAE's decoder is
the conditional linear one by default (regime-specific loadings, partially pooled): with the plain
linear decoder the one-hot regime only shifts the decoder bias, so the decoded covariance would be
the same in both regimes (``CVAECovariance(decoder="linear")`` keeps that set-up).

Improved variants, kept under their own names so the reference stays as specified:
- "vae_posterior": the systematic part decodes the *aggregated posterior* (each training day's
  posterior mean plus its posterior noise) instead of the prior, so a latent the KL term has not
  pushed to unit variance still gets its fitted scale.
- "vae_shrunk": reference systematic part + a Ledoit-Wolf-shrunk full residual covariance instead
  of its diagonal (keeps the residual correlation the k latents miss, e.g. sector co-movement).
- "vae_hetero": a VAE trained with a learned per-stock noise variance (``noise="learned"``, the
  Gaussian NLL; with the linear decoder its ELBO is the factor-analysis likelihood rather than
  probabilistic PCA's); reference systematic part + the model's own noise variance
  ``diag(exp(log_noise_var) * scale^2)`` as the idiosyncratic part.
- "cvae_hetero": the same for the CVAE (one noise variance per stock, shared by the regimes).

A variant that needs a differently trained model says so in the class attribute
``train_overrides`` (``TrainConfig`` fields); :meth:`VAECovariance.train_config` applies it, and
the refit's ``fit_models`` trains one model per distinct dict (the registry may override it).

``trained`` (a ``TrainResult``) skips training: the pipeline trains once and reuses the model via
:meth:`VAECovariance.from_trained`. When it is set, the training hyper-parameters are ignored.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator

from vae_pipeline.core.converged import HEADLINE_TRAIN, mean_kl
from vae_pipeline.core.converged_cvae import HEADLINE_CVAE_TRAIN
from vae_pipeline.core.training import ACTIVE_KL_THRESHOLD, TrainConfig, TrainResult, train_vae

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

    # TrainConfig fields this estimator trains with on top of its own parameters (see module doc).
    train_overrides: dict[str, Any] = {}

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
            decoder=result.model.decoder_kind,  # a CVAE's is TrainConfig.cvae_decoder
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
        kwargs.update(self.train_overrides)
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
    """ "vae_posterior": systematic part from the aggregated posterior instead of the prior.

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
    """ "vae_shrunk": reference systematic part + Ledoit-Wolf-shrunk full residual covariance."""

    def _residual_covariance(self, residuals: np.ndarray) -> np.ndarray:
        return ledoit_wolf_shrunk(residuals - residuals.mean(axis=0))[0]


class CVAECovariance(VAECovariance):
    """Conditional VAE covariance for one regime; ``fit(X, y=labels)``.

    ``condition=None`` -> the label of the last training row (the regime at the decision date).
    The systematic part decodes prior draws with that one-hot condition; the residual variance
    comes from the training days of that regime (all days if fewer than ``min_regime_days``).
    ``n_conditions=None`` -> ``max(label) + 1`` (at least 2), as in ``train_vae``.
    Extra attributes: ``condition_`` (the regime used), ``n_days_used_``.

    ``decoder`` (default ``"conditional_linear"``: regime-specific loadings, partially pooled by a
    Gaussian prior of sd ``interaction_prior_sd`` on their deviations; see ``TrainConfig``) is the
    CVAE's decoder, ``TrainConfig.cvae_decoder``. With ``"linear"`` the condition only shifts the
    decoder bias, so the systematic part is the same in every regime.
    """

    def __init__(
        self,
        latent_dim: int = 4,
        beta: float = 1.0,
        epochs: int = 300,
        lr: float | None = None,
        hidden: int = 64,
        decoder: str = "conditional_linear",
        n_samples: int = 2000,
        seed: int = 42,
        device: str = "auto",
        trained: TrainResult | None = None,
        condition: int | None = None,
        n_conditions: int | None = None,
        min_regime_days: int = 30,
        interaction_prior_sd: float | None = 0.05,
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
        self.interaction_prior_sd = interaction_prior_sd

    def train_config(self) -> TrainConfig:
        """As the VAE's, with ``decoder`` as the CVAE's (``cvae_decoder``) and its prior sd."""
        return replace(
            super().train_config(),
            cvae_decoder=self.decoder,
            interaction_prior_sd=self.interaction_prior_sd,
        ).validate()

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


def model_noise_variance(result: TrainResult) -> np.ndarray:
    """Per-stock noise variance of a ``noise="learned"`` model, in return units (N,) float64."""
    log_var = result.model.noise_logvar()
    if log_var is None:
        raise ValueError(
            "the model was trained with noise='fixed'; it has no learned noise variance"
        )
    var = np.exp(log_var.detach().cpu().numpy().astype(np.float64))
    return var * np.asarray(result.standardiser.scale_, dtype=np.float64) ** 2


class _LearnedNoiseResidual:
    """Mixin: the idiosyncratic part is the model's own learned noise variance (diagonal)."""

    train_overrides: dict[str, Any] = {"noise": "learned"}

    def _finish(self, result: TrainResult, systematic: np.ndarray, residuals: np.ndarray) -> None:
        try:
            self.noise_variance_ = model_noise_variance(result)
        except ValueError as exc:
            raise ValueError(f"{type(self).__name__}: {exc}") from None
        super()._finish(result, systematic, residuals)  # type: ignore[misc]

    def _residual_covariance(self, residuals: np.ndarray) -> np.ndarray:
        return np.diag(self.noise_variance_)


class VAEHeteroCovariance(_LearnedNoiseResidual, VAECovariance):
    """ "vae_hetero": VAE with a learned per-stock noise variance (``TrainConfig(noise="learned")``).

    Systematic part as the reference (prior Monte-Carlo decode); idiosyncratic part
    ``diag(exp(log_noise_var) * scale^2)``. Extra attribute: ``noise_variance_`` (N,).
    """


class CVAEHeteroCovariance(_LearnedNoiseResidual, CVAECovariance):
    """ "cvae_hetero": the CVAE with a learned per-stock noise variance (shared by the regimes).

    With the default conditional linear decoder it is a regime-conditional factor-analysis model
    whose regime loadings are partially pooled (the CVAE's rival is FA on one regime's days).

    Systematic part as ``cvae`` (prior decode with the regime's one-hot condition); idiosyncratic
    part the model's noise variance. Extra attribute: ``noise_variance_`` (N,).
    """


class VAEClosedFormCovariance(VAECovariance):
    """The headline "vae": ``B B' + diag(psi)`` in return units, in closed form (no Monte Carlo).

    The model (``TrainConfig(fit="converged", noise="learned")``, see ``core.converged``) is a
    linear-decoder VAE with a learned per-stock noise variance trained to convergence on the
    analytic ELBO (factor analysis's likelihood plus the KL term); the number of latents is its
    own (held-out ELBO), and latents whose mean KL is below ``ACTIVE_KL_THRESHOLD`` are switched
    off. With ``W`` (N x k, standardised units) the decoder's active columns and ``s`` the
    standardiser's scales, ``B = diag(s) W`` and ``psi = exp(log_noise_var) s^2``. At the
    optimum the aggregated posterior of the latents is N(0, I), so this is the covariance the
    model generates. Extra attributes: ``loadings_`` (N x k active), ``noise_variance_`` (N,),
    ``active_latents_``, ``kl_per_latent_`` (k,).
    """

    train_overrides: dict[str, Any] = dict(HEADLINE_TRAIN)

    def fit(self, X: ArrayLike, y: object = None) -> VAEClosedFormCovariance:
        arr = self._check(X)
        result = self._result(X, None)
        model = result.model
        if result.n_conditions or model.decoder_kind != "linear":
            raise ValueError(f"{type(self).__name__}: needs an unconditional linear-decoder VAE")
        try:
            self.noise_variance_ = model_noise_variance(result)
        except ValueError as exc:
            raise ValueError(f"{type(self).__name__}: {exc}") from None
        x = torch.from_numpy(result.standardiser.transform(arr)).to(torch.float32)
        self.kl_per_latent_ = mean_kl(model, x)
        active = self.kl_per_latent_ > ACTIVE_KL_THRESHOLD
        scale = np.asarray(result.standardiser.scale_, dtype=np.float64)
        w = model.loadings().double().numpy()[:, active]
        self.loadings_ = w * scale[:, None]
        self.active_latents_ = int(active.sum())
        self.result_ = result
        self.systematic_ = symmetrise(self.loadings_ @ self.loadings_.T)
        self.idiosyncratic_ = np.diag(self.noise_variance_)
        self.covariance_ = symmetrise(self.systematic_ + self.idiosyncratic_)
        return self


class CVAEClosedFormCovariance(CVAECovariance):
    """The headline "cvae": ``B_r B_r' + diag(psi)`` for the decision date's regime r, in closed
    form (no Monte Carlo); ``fit(X, y=labels)``.

    The model (``core.converged_cvae``): the CVAE with the conditional linear decoder and a
    learned per-stock noise shared by the regimes, at its ELBO optimum by EM, the number of
    latents the headline VAE's (held-out ELBO on the pooled window), each regime's loadings
    partially pooled toward the pooled fit (pooling chosen by held-out likelihood). With
    ``W_r = model.loadings(r)`` (standardised units) and ``s`` the standardiser's scales,
    ``B_r = diag(s) W_r`` and ``psi = exp(log_noise_var) s^2``. ``condition=None`` -> the label
    of the last training row. Extra attributes: ``condition_``, ``loadings_`` (N x k),
    ``noise_variance_`` (N,), ``n_days_used_`` (the regime's days in the window).
    """

    train_overrides: dict[str, Any] = dict(HEADLINE_CVAE_TRAIN)

    def fit(self, X: ArrayLike, y: object = None) -> CVAEClosedFormCovariance:
        name = type(self).__name__
        arr = self._check(X)
        labels = as_labels(y, arr.shape[0], name=name)
        result = self._result(X, labels)
        model = result.model
        if not result.n_conditions or model.decoder_kind != "conditional_linear":
            raise ValueError(f"{name}: needs a CVAE with the conditional linear decoder")
        cond = int(labels[-1]) if self.condition is None else int(self.condition)
        if not 0 <= cond < result.n_conditions:
            raise ValueError(f"{name}: condition {cond} outside [0, {result.n_conditions})")
        try:
            self.noise_variance_ = model_noise_variance(result)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        scale = np.asarray(result.standardiser.scale_, dtype=np.float64)
        self.loadings_ = model.loadings(cond).double().numpy() * scale[:, None]
        self.condition_, self.n_days_used_ = cond, int((labels == cond).sum())
        self.result_ = result
        self.systematic_ = symmetrise(self.loadings_ @ self.loadings_.T)
        self.idiosyncratic_ = np.diag(self.noise_variance_)
        self.covariance_ = symmetrise(self.systematic_ + self.idiosyncratic_)
        return self
