"""The process's remembered factor-analysis fits (core.factor_fits): the headline CVAE reuses
the headline VAE's fits of the same window, and a remembered fit is the fit itself."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.decomposition import FactorAnalysis

from vae_pipeline.core import factor_fits
from vae_pipeline.core.converged import HEADLINE_TRAIN
from vae_pipeline.core.converged_cvae import HEADLINE_CVAE_TRAIN
from vae_pipeline.core.training import TrainConfig, train_vae


@pytest.fixture(autouse=True)
def _empty_cache():
    factor_fits.clear_cache()
    yield
    factor_fits.clear_cache()


def _window(t: int = 300, n: int = 24, seed: int = 42):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n, 3))
    x = rng.normal(size=(t, 3)) @ w.T + 0.8 * rng.normal(size=(t, n))
    labels = (np.arange(t) // 40) % 2
    return pd.DataFrame(0.01 * x, columns=[f"s{i}" for i in range(n)]), labels


def test_a_remembered_fit_equals_sklearn_and_other_data_or_arguments_miss():
    x, _ = _window()
    z = x.to_numpy()
    first = factor_fits.fit_factor_analysis(z, 3, 1000, 1e-3, 42)
    fa = FactorAnalysis(n_components=3, max_iter=1000, tol=1e-3, random_state=42).fit(z)
    np.testing.assert_array_equal(first.components, fa.components_)
    np.testing.assert_array_equal(first.noise_variance, fa.noise_variance_)
    assert first.loglike == tuple(fa.loglike_) and first.n_iter == fa.n_iter_
    again = factor_fits.fit_factor_analysis(z.copy(), 3, 1000, 1e-3, 42)
    assert again is first and factor_fits.cache_info()["hits"] == 1
    with pytest.raises(ValueError):  # read-only: a caller cannot corrupt a remembered fit
        first.components[0, 0] = 1.0
    # another day's data, another k, another seed: new fits
    factor_fits.fit_factor_analysis(z[1:], 3, 1000, 1e-3, 42)
    factor_fits.fit_factor_analysis(z, 2, 1000, 1e-3, 42)
    factor_fits.fit_factor_analysis(z, 3, 1000, 1e-3, 7)
    assert factor_fits.cache_info() == {**factor_fits.cache_info(), "hits": 1, "misses": 4}


def test_the_headline_cvae_reuses_the_headline_vaes_fits_and_is_unchanged_by_them():
    x, labels = _window()
    base = TrainConfig(latent_dim=2, seed=42, device="cpu")
    vae_cfg = replace(base, **HEADLINE_TRAIN)
    cvae_cfg = replace(base, **HEADLINE_CVAE_TRAIN)

    alone = train_vae(x, cvae_cfg, conditions=labels, n_conditions=2)  # its own fits only
    assert factor_fits.cache_info()["hits"] == 0
    factor_fits.clear_cache()
    train_vae(x, vae_cfg)
    after_vae = train_vae(x, cvae_cfg, conditions=labels, n_conditions=2)
    # the k selector (k_max latents on the same held-in days) and the pooled final fit
    assert factor_fits.cache_info()["hits"] == 2
    for name, value in alone.model.state_dict().items():
        assert torch.equal(value, after_vae.model.state_dict()[name]), name
    pd.testing.assert_frame_equal(alone.history, after_vae.history)


def test_the_cache_drops_the_oldest_fits_beyond_its_bytes(monkeypatch):
    x, _ = _window(t=120, n=10)
    z = x.to_numpy()
    one = factor_fits.fit_factor_analysis(z, 2, 1000, 1e-3, 42).nbytes
    factor_fits.clear_cache()
    monkeypatch.setattr(factor_fits._CACHE, "max_bytes", 2 * one)
    for shift in range(3):
        factor_fits.fit_factor_analysis(z[shift:], 2, 1000, 1e-3, 42)
    info = factor_fits.cache_info()
    assert info["fits"] == 2 and info["bytes"] <= 2 * one
    factor_fits.fit_factor_analysis(z[2:], 2, 1000, 1e-3, 42)  # the newest is kept
    factor_fits.fit_factor_analysis(z, 2, 1000, 1e-3, 42)  # the oldest was dropped
    assert factor_fits.cache_info()["hits"] == 1
