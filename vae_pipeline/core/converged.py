"""The headline VAE's fit: analytic ELBO, L-BFGS to convergence, latents chosen by held-out ELBO.

Why not the reference loop (Adam, a fixed 300 epochs, sampled ELBO): on real windows with a
dominant market eigenvalue it stops far from its optimum. The encoder / decoder scale is a
near-flat direction of the ELBO (only the KL pins it), so after 300 Adam steps the aggregated
posterior variance of the latents is 1.3-3.5 instead of 1 and the prior-decoded market
eigenvalue is 21-39 % of the sample's; longer Adam runs at lr 3e-2 spike (``benchmarks/
diagnose_vae_reference.py``). Here:

- **Encoder and ELBO.** A linear encoder (the exact posterior of a linear-Gaussian decoder is
  Gaussian with a mean affine in x, so no amortisation gap) and the analytic ELBO
  (:func:`analytic_elbo`, the expectation of the sampled :func:`vae_loss`; hand-written because
  torch has no closed-form linear-Gaussian ELBO). Its optimum is the factor-analysis likelihood.
- **Optimiser.** Coordinate ascent on that ELBO, i.e. EM: the decoder (loadings, bias, noise)
  from ``sklearn.decomposition.FactorAnalysis``, the encoder set to the exact posterior
  (:func:`set_to_em_optimum`). Gradient methods were tried first: L-BFGS on the analytic ELBO
  hit a 30 s budget at N = 471 and still had the crash window's market eigenvalue at 62 % of
  FA's (the encoder/decoder scale is ill-conditioned); EM reaches it in ~0.5 s.
- **Stopping rule.** :func:`converged`: the last ``CONVERGE_WINDOW`` iterations improved the
  objective by less than ``CONVERGE_TOL`` of its total improvement (checked on EM's
  log-likelihood path; EM also stops on sklearn's absolute ``EM_TOL``); ``stop_reason`` says
  whether it converged or hit ``MAX_STEPS``. The Adam path (``vae_mlp``) uses the same rule on
  its running-best loss within ``TrainConfig.max_seconds``.
- **Number of latents.** ``max_latents`` (default ``min(32, N // 4)``) latents are trained. The
  maximum-likelihood ELBO does not collapse the surplus ones: a latent on a noise direction of
  whitened eigenvalue l keeps KL = log(l) / 2 > 0, and in this N ~ T regime noise eigenvalues
  reach (1 + sqrt(N/T))^2, so *every* latent stays above any small KL threshold (measured: 15 of
  15 on the 4-factor synthetic panel, 32 of 32 on real windows). The count is therefore chosen
  by the held-out ELBO: a fit on a seeded random ``HOLDOUT`` of the days left out, its latents
  ranked by KL, and the number j whose decoder (top-j latents, the dropped latents' variance
  moved into the noise so each stock keeps its variance) gives the held-out days the highest
  evidence (the ELBO at the exact posterior, closed form). The final model is then fitted on
  the whole window with that many latents; its active
  latents (mean KL > ``ACTIVE_KL_THRESHOLD``) are counted and reported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.linalg import solve_triangular

from vae_pipeline.core.factor_fits import fit_factor_analysis
from vae_pipeline.core.model import NOISE_LOGVAR_MIN, VAE, kl_per_dim

if TYPE_CHECKING:
    from vae_pipeline.core.training import TrainConfig

# Relative-improvement stopping rule (see module doc); EM's own absolute tolerance on the
# log-likelihood (sklearn's ``tol``) and its iteration cap.
CONVERGE_TOL = 1e-3
CONVERGE_WINDOW = 10
EM_TOL = 1e-3
MAX_STEPS = 1000
# Share of the window's days held out (seeded random days, not the tail: the window is one
# sample of the covariance it estimates, and a tail in a crash would measure a regime change).
HOLDOUT = 0.2
LATENT_CAP = 32
# The headline model's TrainConfig fields (the registry's "vae" and the estimators that read the
# same model). The budget is a safety net: the stopping rule ends a fit first on the panels seen.
HEADLINE_TRAIN = {
    "fit": "converged",
    "noise": "learned",
    "decoder": "linear",
    "encoder": "linear",
    "max_seconds": 30.0,
}


def default_max_latents(n_stocks: int, n_days: int) -> int:
    """``min(32, N // 4)`` latents, and fewer than the days (at least 1)."""
    return max(1, min(LATENT_CAP, n_stocks // 4, n_days - 2))


def analytic_elbo(model: VAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(total, recon, kl)`` per day, the expectation of :func:`vae_loss` over q (linear decoder,
    learned noise, unconditional): deterministic, so L-BFGS can minimise it."""
    mu, logvar = model.encode(x)
    w, b = model.decoder.weight, model.decoder.bias
    log_psi = model.noise_logvar()
    resid = x - mu @ w.T - b
    sq = (resid * resid).mean(dim=0) + (w * w) @ logvar.exp().mean(dim=0)  # (N,) E_q sq. error
    recon = 0.5 * ((sq * torch.exp(-log_psi)).sum() + log_psi.sum())
    kl = kl_per_dim(mu, logvar).sum(dim=1).mean()
    return recon + kl, recon, kl


@torch.no_grad()
def set_to_em_optimum(
    model: VAE, z: np.ndarray, max_iter: int, seed: int
) -> tuple[list[float], str]:
    """Maximise the linear VAE's ELBO by coordinate ascent, i.e. EM: sklearn's
    ``FactorAnalysis`` on the standardised window ``z`` gives the decoder (loadings, bias, noise);
    the encoder is then set to the exact posterior, ``mu = S W' Psi^-1 (x - b)``, ``S = (I + W'
    Psi^-1 W)^-1`` (constant log-variance ``log diag S``), which the linear encoder represents
    exactly, so the ELBO equals the FA log-likelihood. Returns the negative log-likelihood per
    EM iteration (per day) and the stop reason of :func:`converged` on it."""
    k = model.latent_dim
    fa = fit_factor_analysis(z, k, max_iter, EM_TOL, seed)  # the CVAE's fits share it
    w = fa.components.T.astype(np.float64)  # N x k
    psi = np.maximum(fa.noise_variance, np.exp(NOISE_LOGVAR_MIN))
    wp = w / psi[:, None]
    post_cov = np.linalg.inv(np.eye(k) + w.T @ wp)
    enc = post_cov @ wp.T  # k x N
    head_w = np.zeros((2 * k, model.n_inputs))
    head_b = np.zeros(2 * k)
    head_w[:k], head_b[:k] = enc, -enc @ fa.mean
    head_b[k:] = np.log(np.diag(post_cov))
    model.enc_head.weight.copy_(torch.from_numpy(head_w))
    model.enc_head.bias.copy_(torch.from_numpy(head_b))
    model.decoder.weight.copy_(torch.from_numpy(w))
    model.decoder.bias.copy_(torch.from_numpy(fa.mean.copy()))
    model.log_noise_var.copy_(torch.from_numpy(np.log(psi)))
    losses = [-float(v) / z.shape[0] for v in fa.loglike]
    return losses, "converged" if converged(losses) or fa.n_iter < max_iter else "max_steps"


def converged(
    losses: list[float], tol: float = CONVERGE_TOL, window: int = CONVERGE_WINDOW
) -> bool:
    """The last ``window`` steps improved the loss by less than ``tol`` of its total improvement."""
    if len(losses) <= window:
        return False
    total = losses[0] - losses[-1]
    return total > 0 and (losses[-1 - window] - losses[-1]) <= tol * total


@torch.no_grad()
def mean_kl(model: VAE, x: torch.Tensor) -> np.ndarray:
    """Average KL per latent (k,) in nats per day."""
    mu, logvar = model.eval().encode(x)
    return kl_per_dim(mu, logvar).mean(dim=0).double().numpy()


@torch.no_grad()
def heldout_evidence(model: VAE, order: np.ndarray, x_val: torch.Tensor) -> np.ndarray:
    """Mean held-out log evidence per day (constant dropped) of the decoder kept to its top-j
    latents (``order``), j = 0..k. The evidence is the ELBO at the exact posterior, so this is
    the held-out ELBO of each truncation; a dropped latent's variance goes into the noise."""
    w = model.decoder.weight.double().numpy()[:, order]
    psi = np.exp(model.noise_logvar().double().numpy()) + (w * w).sum(axis=1)
    xc = x_val.double().numpy() - model.decoder.bias.double().numpy()
    # C_j = D_j + W_j W_j' by Woodbury (hand-written: numpy/scipy have no low-rank-plus-diagonal
    # Gaussian likelihood): logdet C = logdet D + logdet M, x' C^-1 x = x' D^-1 x - v' M^-1 v,
    # M = I + W' D^-1 W, v = W' D^-1 x -- O(N j (j + T)) per j instead of an N x N Cholesky
    # (at N = 500, k_max = 32: 0.4 s -> ~10 ms per fit); the same value up to float64 rounding.
    out = []
    for j in range(w.shape[1] + 1):
        if j:
            psi = psi - w[:, j - 1] ** 2
        d = np.maximum(psi, 1e-8)
        quad = ((xc * xc) / d).sum()
        logdet = np.log(d).sum()
        if j:
            a = w[:, :j] / d[:, None]  # D^-1 W
            m = np.eye(j) + w[:, :j].T @ a
            chol = np.linalg.cholesky(m)
            v = solve_triangular(chol, a.T @ xc.T, lower=True)
            quad -= (v * v).sum()
            logdet += 2.0 * np.log(np.diag(chol)).sum()
        out.append(-0.5 * (logdet + quad / xc.shape[0]))
    return np.asarray(out)


def new_model(n_stocks: int, k: int, config: TrainConfig) -> VAE:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        return VAE(n_stocks, k, config.hidden, 0, "linear", "learned", config.encoder)
