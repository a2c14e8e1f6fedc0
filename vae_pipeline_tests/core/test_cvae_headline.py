"""The headline CVAE (core.converged_cvae, ``CVAEClosedFormCovariance``) and the reference CVAE
kept as ``cvae_reference``: tiny seed-42 windows, fast."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from vae_pipeline.core.converged_cvae import HEADLINE_CVAE_TRAIN, TAU_GRID
from vae_pipeline.core.covariance import (
    REGISTRY,
    CVAEClosedFormCovariance,
    CVAECovariance,
    ModelKey,
    VAEClosedFormCovariance,
)
from vae_pipeline.core.covariance.registry import model_names
from vae_pipeline.core.refit import estimate_covariances, fit_models
from vae_pipeline.core.synthetic import generate_panel
from vae_pipeline.core.training import TrainConfig

K = 2
CFG = TrainConfig(latent_dim=K, epochs=15, seed=42, device="cpu")


def _window(shared: bool, seed: int = 42, t: int = 400, n: int = 30, k: int = 3):
    """Two regimes alternating in blocks of 50 days; regime 1's first factor loads twice as
    hard unless ``shared``."""
    rng = np.random.default_rng(seed)
    wa = rng.normal(size=(n, k))
    wb = wa.copy()
    if not shared:
        wb[:, 0] *= 2.0
    labels = (np.arange(t) // 50) % 2
    z = rng.normal(size=(t, k))
    x = np.where(labels[:, None] == 0, z @ wa.T, z @ wb.T) + 0.7 * rng.normal(size=(t, n))
    truth = [1e-4 * (w @ w.T + 0.49 * np.eye(n)) for w in (wa, wb)]
    return pd.DataFrame(0.01 * x, columns=[f"s{i}" for i in range(n)]), labels, truth


def test_registry_holds_both_cvaes_and_names_their_models():
    assert REGISTRY["cvae"].cls is CVAEClosedFormCovariance and REGISTRY["cvae"].labels
    ref = REGISTRY["cvae_reference"]
    assert ref.cls is CVAECovariance and ref.labels and ref.model_key == ModelKey("cvae")
    names = model_names()
    assert names[REGISTRY["cvae"].model_key] == "cvae"
    assert names[ModelKey("cvae")] == "cvae_reference"  # stored as trained_cvae_reference
    assert dict(REGISTRY["cvae"].model_key.overrides) == HEADLINE_CVAE_TRAIN


def test_cvae_reference_reproduces_the_old_cvae_exactly():
    panel = generate_panel(n_days=140, n_names=12, kind="regime", seed=42)
    window = panel.returns.iloc[:120]
    regimes = panel.observables["regime"].astype(int).loc[window.index].to_numpy()
    models = fit_models(window, regimes, CFG, names=["cvae_reference"])
    covs = estimate_covariances(window, K, models, regimes, n_samples=300, names=["cvae_reference"])
    # the old "cvae": CVAECovariance trained with the run's config, nothing on top
    old = CVAECovariance(latent_dim=K, epochs=15, seed=42, device="cpu", n_samples=300).fit(
        window, regimes
    )
    np.testing.assert_array_equal(covs["cvae_reference"], old.covariance_)


@pytest.fixture(scope="module")
def differing():
    x, labels, truth = _window(shared=False)
    return x, labels, truth, CVAEClosedFormCovariance().fit(x, labels)


def test_headline_cvae_is_closed_form_psd_and_regime_specific(differing):
    x, labels, truth, est = differing
    res = est.result_
    assert res.n_conditions == 2 and res.model.decoder_kind == "conditional_linear"
    assert res.stop_reason == "converged" and res.regime_pooling is not None
    assert len(res.regime_pooling["heldout_loglik"]) == len(TAU_GRID)
    k = res.config.latent_dim
    covs = {}
    for r in (0, 1):
        e = CVAEClosedFormCovariance(trained=res, condition=r).fit(x, labels)
        scale = res.standardiser.scale_
        w = res.model.loadings(r).double().numpy() * scale[:, None]
        np.testing.assert_allclose(e.covariance_, w @ w.T + np.diag(e.noise_variance_), rtol=1e-6)
        assert e.loadings_.shape == (x.shape[1], k)
        assert np.linalg.eigvalsh(e.covariance_).min() > 0
        covs[r] = e.covariance_
    # the decision date's regime by default
    np.testing.assert_array_equal(est.covariance_, covs[int(labels[-1])])
    # regime 1's first factor loads twice as hard: the regimes' covariances differ, each
    # closer to its regime's true covariance than the pooled headline VAE's is
    assert np.linalg.norm(covs[1] - covs[0]) / np.linalg.norm(covs[0]) > 0.05
    assert res.regime_pooling["tau_days"] < np.inf  # not fully pooled
    pooled = VAEClosedFormCovariance().fit(x).covariance_
    for r in (0, 1):
        assert np.linalg.norm(covs[r] - truth[r]) < np.linalg.norm(pooled - truth[r]), r


def test_headline_cvae_is_the_headline_vae_when_the_regimes_share_loadings():
    x, labels, _ = _window(shared=True)
    cvae = CVAEClosedFormCovariance().fit(x, labels)
    vae = VAEClosedFormCovariance().fit(x)
    assert cvae.result_.config.latent_dim == vae.result_.config.latent_dim
    for r in (0, 1):
        c = CVAEClosedFormCovariance(trained=cvae.result_, condition=r).fit(x, labels)
        rel = np.linalg.norm(c.covariance_ - vae.covariance_) / np.linalg.norm(vae.covariance_)
        assert rel < 0.05, (r, rel, cvae.result_.regime_pooling)


def test_headline_cvae_encoder_is_the_exact_posterior_when_fully_pooled():
    x, labels, _ = _window(shared=True)
    res = CVAEClosedFormCovariance().fit(x, labels).result_
    xt = torch.from_numpy(res.standardiser.transform(x)).float()
    c = torch.from_numpy(labels)
    with torch.no_grad():
        mu, logvar = res.model.encode(xt, c)
    # the aggregated posterior of the latents at the optimum is N(0, I): var(mu) + E[var] = 1
    agg = mu.double().var(dim=0).numpy() + logvar.double().exp().mean(dim=0).numpy()
    np.testing.assert_allclose(agg, 1.0, atol=0.05)
