"""The headline CVAE's fit: a regime-conditional linear VAE at its ELBO optimum, by EM.

The model (the CVAE with the conditional linear decoder and a learned noise): for a day in
regime r, ``x | z, r ~ N(m_r + W_r z, Psi)``, ``z ~ N(0, I)`` -- regime-specific loadings and
means, one per-stock noise variance shared by the regimes (the ``VAE`` class holds one
``log_noise_var``). As for the headline VAE (``core.converged``), with the exact posterior as
encoder the ELBO is the likelihood, here of a regime-wise factor-analysis model, so the fit is
EM on it (:func:`regime_fa_em`, on the regimes' covariance matrices; the E step in k x k by
Woodbury).

Partial pooling. A regime has fewer days than the window (on real data a contraction regime is
often 15-30 % of it), and FA on its days alone is noisy. Each regime's model is fitted to a
shrunk covariance ``lambda_r S_r + (1 - lambda_r) S_0`` (``S_r``: the regime's days about their
mean; ``S_0``: the whole window about its mean, what the headline VAE fits), with
``lambda_r = n_r / (n_r + tau)``: a prior worth ``tau`` days at the pooled covariance, so a small
regime is pooled more. ``tau`` is chosen by held-out likelihood (each held-out day under its own
regime's model) from :data:`TAU_GRID` (multiples of the window length, ``inf`` = fully pooled:
the headline VAE's covariance in every regime). The held-out days and the number of latents are
the headline VAE's (k chosen on the pooled window by held-out ELBO), so with ``tau = inf`` the
model is the headline VAE plus a regime mean.

The encoder. The exact posterior in regime r is ``N(G_r W_r' Psi^-1 (x - m_r), G_r)``,
``G_r = (I + W_r' Psi^-1 W_r)^-1``. The CVAE's linear encoder reads ``[x, c]``, so its
regime-specific part is an offset only: its log-variance is exact (``log diag G_r`` per
regime), its mean uses the share-weighted average of the regimes' ``G_r W_r' Psi^-1`` (exact
when the regimes share their loadings). The covariance does not read the encoder.
"""

from __future__ import annotations

import math

import numpy as np

from vae_pipeline.core.converged import EM_TOL, MAX_STEPS, converged
from vae_pipeline.core.model import NOISE_LOGVAR_MIN

# tau / T: 0 = each regime on its own days, inf = fully pooled.
TAU_GRID = (0.0, 0.25, 1.0, 4.0, math.inf)
# A regime with fewer days than this (in the fit part) is fully pooled (lambda_r = 0).
MIN_REGIME_DAYS = 10


def shrink_weights(counts: np.ndarray, tau: float) -> np.ndarray:
    """``lambda_r = n_r / (n_r + tau)`` (0 for a regime under :data:`MIN_REGIME_DAYS` days)."""
    counts = np.asarray(counts, dtype=np.float64)
    if math.isinf(tau):
        lam = np.zeros_like(counts)
    else:
        lam = counts / np.maximum(counts + tau, 1e-12)
    return np.where(counts >= MIN_REGIME_DAYS, lam, 0.0)


def regime_moments(
    z: np.ndarray, labels: np.ndarray, n_conditions: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(m0, S0, means, covs, counts)``: the pooled mean / covariance (ddof 0) and each regime's
    (a regime without days gets the pooled ones)."""
    m0 = z.mean(axis=0)
    zc = z - m0
    s0 = zc.T @ zc / z.shape[0]
    means = np.repeat(m0[None], n_conditions, axis=0)
    covs = np.repeat(s0[None], n_conditions, axis=0)
    counts = np.zeros(n_conditions)
    for r in range(n_conditions):
        rows = labels == r
        counts[r] = rows.sum()
        if counts[r] >= 2:
            means[r] = z[rows].mean(axis=0)
            d = z[rows] - means[r]
            covs[r] = d.T @ d / counts[r]
    return m0, s0, means, covs, counts


def _posterior(w: np.ndarray, psi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(G, beta)``: ``G = (I + W' Psi^-1 W)^-1`` and ``beta = G W' Psi^-1`` (k x N)."""
    wp = w / psi[:, None]
    g = np.linalg.inv(np.eye(w.shape[1]) + w.T @ wp)
    return g, g @ wp.T


def gaussian_loglik(w: np.ndarray, psi: np.ndarray, s: np.ndarray) -> float:
    """Mean log-likelihood per day (constant dropped) of data with second moment ``s`` about
    the model's mean under ``N(., W W' + diag(psi))``: ``-(logdet C + tr(C^-1 s)) / 2``."""
    g, beta = _posterior(w, psi)
    return _loglik(w, psi, s, g, s @ beta.T)


def _loglik(w, psi, s, g, sb) -> float:
    """:func:`gaussian_loglik` from the posterior ``g`` and ``sb = S beta'`` (N x k), which the
    EM step computes anyway (one N x N x k product per regime and iteration, not two)."""
    logdet = np.log(psi).sum() - np.linalg.slogdet(g)[1]
    # tr(C^-1 S) = tr(Psi^-1 S) - tr(beta S Psi^-1 W)
    tr = float((np.diag(s) / psi).sum()) - float(np.sum(sb * (w / psi[:, None])))
    return -0.5 * (logdet + tr)


def regime_fa_em(
    covs: np.ndarray,
    weights: np.ndarray,
    w_init: np.ndarray,
    psi_init: np.ndarray,
    max_iter: int = MAX_STEPS,
    tol: float = EM_TOL,
    n_days: int = 1,
) -> tuple[np.ndarray, np.ndarray, list[float], str]:
    """EM for ``C_r = W_r W_r' + diag(psi)`` fitted to the covariances ``covs`` (R x N x N) with
    day weights ``weights`` (R,, summing to 1; one ``psi`` shared). Starts every regime at
    ``w_init`` / ``psi_init``. Returns ``(W (R x N x k), psi, losses, stop_reason)``; ``losses``
    is the negative weighted log-likelihood per day per iteration; EM stops when the total
    (``n_days`` times it) improves by less than ``tol``, or by :func:`converged`."""
    n_reg = covs.shape[0]
    w = np.repeat(w_init[None].astype(np.float64), n_reg, axis=0)
    psi = np.maximum(psi_init.astype(np.float64), math.exp(NOISE_LOGVAR_MIN))
    floor = math.exp(NOISE_LOGVAR_MIN)
    active = weights > 0
    losses: list[float] = []
    reason = "max_steps"
    for _ in range(max_iter):
        new_psi = np.zeros_like(psi)
        loss = 0.0
        for r in range(n_reg):
            if not active[r]:
                continue
            s = covs[r]
            g, beta = _posterior(w[r], psi)
            sb = s @ beta.T  # N x k
            loss -= weights[r] * _loglik(w[r], psi, s, g, sb)
            ezz = g + beta @ sb  # I - beta W + beta S beta' = G + beta S beta'
            w_new = np.linalg.solve(ezz, sb.T).T
            new_psi += weights[r] * (np.diag(s) - np.sum(w_new * sb, axis=1))
            w[r] = w_new
        psi = np.maximum(new_psi, floor)
        losses.append(float(loss))
        if len(losses) > 1 and (losses[-2] - losses[-1]) * n_days < tol:
            reason = "converged"
            break
        if converged(losses):
            reason = "converged"
            break
    for r in range(n_reg):  # a regime without weight keeps the pooled loadings
        if not active[r]:
            w[r] = w_init
    return w, psi, losses, reason


def fit_regime_fa(
    z: np.ndarray,
    labels: np.ndarray,
    n_conditions: int,
    tau: float,
    w0: np.ndarray,
    psi0: np.ndarray,
) -> dict:
    """The regime model at pooling ``tau`` (days) on the standardised window ``z``, started at
    the pooled FA fit ``w0`` / ``psi0``. Returns the loadings, noise, means, ``lambda_r``,
    losses and stop reason."""
    m0, s0, means, covs, counts = regime_moments(z, labels, n_conditions)
    lam = shrink_weights(counts, tau)
    shrunk = lam[:, None, None] * covs + (1.0 - lam)[:, None, None] * s0[None]
    share = counts / counts.sum()
    w, psi, losses, reason = regime_fa_em(shrunk, share, w0, psi0, n_days=z.shape[0])
    return {
        "loadings": w,
        "psi": psi,
        "means": means,
        "pooled_mean": m0,
        "lambda": lam,
        "share": share,
        "losses": losses,
        "stop_reason": reason,
    }


def heldout_loglik(fit: dict, z_val: np.ndarray, labels_val: np.ndarray) -> float:
    """Mean log-likelihood per held-out day, each day under its own regime's model."""
    total, n = 0.0, 0
    for r in range(fit["loadings"].shape[0]):
        rows = labels_val == r
        if not rows.any():
            continue
        d = z_val[rows] - fit["means"][r]
        total += rows.sum() * gaussian_loglik(fit["loadings"][r], fit["psi"], d.T @ d / rows.sum())
        n += int(rows.sum())
    return total / max(n, 1)


def set_regime_fa_weights(model, fit: dict) -> None:
    """Write a :func:`fit_regime_fa` result into a CVAE (conditional linear decoder, learned
    noise, linear encoder): decoder bias the pooled mean, condition column r ``m_r - m0``,
    shared loadings the share-weighted mean ``W_bar`` of the ``W_r``, interaction block
    ``W_r - W_bar`` (so ``model.loadings(r) = W_r``); noise ``log psi``; the encoder as in the
    module doc."""
    import torch

    w, psi, means, m0, share = (
        fit["loadings"],
        fit["psi"],
        fit["means"],
        fit["pooled_mean"],
        fit["share"],
    )
    n_reg, n, k = w.shape
    if model.decoder_kind != "conditional_linear" or model.encoder_kind != "linear":
        raise ValueError("set_regime_fa_weights needs the conditional linear decoder and encoder")
    if (model.n_conditions, model.n_inputs, model.latent_dim) != (n_reg, n, k):
        raise ValueError("set_regime_fa_weights: the model's shape does not match the fit")
    w_bar = np.tensordot(share, w, axes=1)
    dec = np.zeros((n, k + n_reg + k * n_reg))
    dec[:, :k] = w_bar
    for r in range(n_reg):
        dec[:, k + r] = means[r] - m0
        dec[:, k + n_reg + r :: n_reg] = w[r] - w_bar
    posts = [_posterior(w[r], psi) for r in range(n_reg)]
    a = np.tensordot(share, np.stack([b for _, b in posts]), axes=1)  # k x N
    head = np.zeros((2 * k, n + n_reg))
    head[:k, :n] = a
    for r in range(n_reg):
        head[:k, n + r] = -a @ means[r]
        head[k:, n + r] = np.log(np.diag(posts[r][0]))
    with torch.no_grad():
        model.decoder.weight.copy_(torch.from_numpy(dec))
        model.decoder.bias.copy_(torch.from_numpy(m0))
        model.enc_head.weight.copy_(torch.from_numpy(head))
        model.enc_head.bias.zero_()
        model.log_noise_var.copy_(torch.from_numpy(np.log(psi)))


# The headline CVAE's TrainConfig fields (the registry's "cvae"): the headline VAE's, with the
# conditional linear decoder for the conditioned model.
HEADLINE_CVAE_TRAIN = {
    "fit": "converged",
    "noise": "learned",
    "decoder": "linear",
    "cvae_decoder": "conditional_linear",
    "encoder": "linear",
    "max_seconds": 30.0,
}
