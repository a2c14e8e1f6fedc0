"""VAE variants: learned per-stock noise ("vae_hetero") and the conditional linear decoder (CVAE).

Fast (seed 42, small panels, CPU): the learned noise tracks heteroscedastic idiosyncratic vol,
the Gaussian NLL reduces to the fixed loss, the hetero covariance is symmetric PSD with the model's
noise as its residual, the conditional linear decoder gives regime-specific decoded covariances
(the plain linear decoder cannot), and both options round-trip through the model store.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from vae_pipeline.core.covariance import (
    ESTIMATORS,
    CVAECovariance,
    CVAEHeteroCovariance,
    ModelKey,
    VAECovariance,
    VAEHeteroCovariance,
    make_estimator,
    model_noise_variance,
)
from vae_pipeline.core.model import (
    NOISE_LOGVAR_INIT,
    VAE,
    model_from_bytes,
    model_to_bytes,
    vae_loss,
)
from vae_pipeline.core.model_store import record_to_result, result_to_record
from vae_pipeline.core.refit import CVAE_MODEL, VAE_MODEL, estimate_covariances, fit_models
from vae_pipeline.core.training import TrainConfig, train_vae

SEED = 42
N, K, T = 24, 2, 400
FAST = dict(latent_dim=K, epochs=150, hidden=16, device="cpu", seed=SEED)


def hetero_panel(t: int = T, n: int = N, seed: int = SEED):
    """K-factor panel whose idiosyncratic vol spans a factor 4 across stocks."""
    rng = np.random.default_rng(seed)
    b = rng.normal(0.0, 0.01, (n, K))
    b[:, 0] = np.abs(b[:, 0]) + 0.006
    idio = np.geomspace(0.004, 0.016, n)
    f = rng.standard_normal((t, K))
    x = f @ b.T + rng.standard_normal((t, n)) * idio
    cols = [f"S{i:02d}" for i in range(n)]
    return pd.DataFrame(x, columns=cols), b, idio


def regime_panel(t: int = T, n: int = N, seed: int = SEED):
    """Two regimes (alternating 50-day blocks) whose loadings differ; labels returned too."""
    rng = np.random.default_rng(seed)
    labels = ((np.arange(t) // 50) % 2).astype(int)
    b0 = rng.normal(0.0, 0.01, (n, K))
    b1 = rng.normal(0.0, 0.01, (n, K))
    f = rng.standard_normal((t, K))
    load = np.where(labels[:, None, None] == 0, b0, b1)  # T x N x K
    x = np.einsum("tnk,tk->tn", load, f) + rng.standard_normal((t, n)) * 0.005
    return pd.DataFrame(x, columns=[f"S{i:02d}" for i in range(n)]), labels, b0, b1


@pytest.fixture(scope="module")
def hetero():
    x, b, idio = hetero_panel()
    return x, idio, train_vae(x, TrainConfig(**FAST, noise="learned"))


@pytest.fixture(scope="module")
def regime():
    x, labels, b0, b1 = regime_panel()
    # unpooled (no prior on the regime deviations): the regimes' loadings here are unrelated draws
    cl = train_vae(x, TrainConfig(**FAST, interaction_prior_sd=None), conditions=labels)
    lin = train_vae(x, TrainConfig(**FAST, cvae_decoder="linear"), conditions=labels)
    pooled = train_vae(x, TrainConfig(**FAST), conditions=labels)  # the default CVAE
    return x, labels, b0, b1, cl, lin, pooled


# ---- learned noise ------------------------------------------------------------------------------


def test_learned_noise_tracks_heteroscedastic_idio_vol(hetero):
    x, idio, res = hetero
    model = res.model
    assert model.noise_kind == "learned" and res.config.noise == "learned"
    log_var = model.noise_logvar().detach().numpy()
    assert not np.allclose(log_var, NOISE_LOGVAR_INIT)  # it was learned
    assert log_var.max() - log_var.min() > 1.0  # and differs across stocks
    # in return units it follows the planted idiosyncratic variance
    var = model_noise_variance(res)
    assert np.corrcoef(np.log(var), np.log(idio**2))[0, 1] > 0.9
    np.testing.assert_allclose(np.median(var / idio**2), 1.0, atol=0.3)


def test_fixed_noise_has_no_parameter_and_default_is_fixed():
    assert TrainConfig().noise == "fixed"
    model = VAE(5, 2, 8)
    assert model.noise_logvar() is None and not hasattr(model, "log_noise_var")
    with pytest.raises(ValueError, match="noise"):
        VAE(5, 2, 8, noise="student")
    with pytest.raises(ValueError, match="noise"):
        TrainConfig(noise="student").validate()


def test_nll_reduces_to_the_fixed_loss():
    gen = torch.Generator().manual_seed(SEED)
    x, xhat = torch.randn(30, 7, generator=gen), torch.randn(30, 7, generator=gen)
    mu, logvar = torch.randn(30, 2, generator=gen), torch.randn(30, 2, generator=gen) * 0.1
    total, recon, kl = vae_loss(x, xhat, mu, logvar, 1.0)
    # log s^2 = log 0.5 for every stock: the sum of squares plus a constant 0.5 N log 0.5
    half = torch.full((7,), math.log(0.5))
    total_h, recon_h, kl_h = vae_loss(x, xhat, mu, logvar, 1.0, half)
    assert float(kl_h) == pytest.approx(float(kl))
    assert float(recon_h) == pytest.approx(float(recon) + 0.5 * 7 * math.log(0.5), rel=1e-6)
    assert float(total_h - total) == pytest.approx(0.5 * 7 * math.log(0.5), rel=1e-6)
    # a fixed-noise model trains on exactly the reference loss
    res = train_vae(hetero_panel()[0], TrainConfig(**{**FAST, "epochs": 5}))
    assert res.model.noise_logvar() is None


def test_vae_hetero_covariance_is_psd_with_the_model_noise_as_residual(hetero):
    x, idio, res = hetero
    assert ESTIMATORS["vae_hetero"] is VAEHeteroCovariance
    est = VAEHeteroCovariance.from_trained(res, x, n_samples=500)
    cov = est.covariance_
    assert cov.shape == (N, N) and np.isfinite(cov).all()
    np.testing.assert_allclose(cov, cov.T, rtol=0, atol=1e-15 * np.abs(cov).max())
    assert np.linalg.eigvalsh(cov)[0] > 0
    expected = np.exp(res.model.noise_logvar().detach().numpy().astype(np.float64))
    expected *= res.standardiser.scale_**2
    np.testing.assert_allclose(np.diag(est.idiosyncratic_), expected, rtol=1e-12)
    assert np.count_nonzero(est.idiosyncratic_ - np.diag(np.diag(est.idiosyncratic_))) == 0
    np.testing.assert_allclose(cov, est.systematic_ + est.idiosyncratic_, rtol=1e-12)


def test_vae_hetero_trains_its_own_model_and_rejects_a_fixed_one(hetero):
    x, _, _ = hetero
    est = make_estimator(
        "vae_hetero", **{k: v for k, v in FAST.items() if k != "epochs"}, epochs=20, n_samples=200
    ).fit(x)
    assert est.result_.config.noise == "learned"
    assert (
        est.train_config().noise == "learned"
        and VAECovariance(**FAST).train_config().noise == "fixed"
    )
    fixed = train_vae(x, TrainConfig(**{**FAST, "epochs": 5}))
    with pytest.raises(ValueError, match="noise"):
        VAEHeteroCovariance.from_trained(fixed, x)


def test_refit_stages_add_vae_hetero(hetero):
    x, _, res = hetero
    cfg = TrainConfig(**{**FAST, "epochs": 20})
    vae = train_vae(x, cfg)
    models = fit_models(x, None, cfg, names=["vae_reference", "vae_hetero"], given={VAE_MODEL: vae})
    key = ModelKey("vae", (("noise", "learned"),))
    assert models.trained == (key,)  # the given VAE is not retrained
    covs = estimate_covariances(x, k=K, models=models, n_samples=200)
    assert "vae_hetero" in covs and np.linalg.eigvalsh(covs["vae_hetero"])[0] > 0
    # a trained model passed in is used as is
    given = fit_models(x, None, cfg, names=["vae_hetero"], given={VAE_MODEL: vae, key: res})
    assert given.trained == ()
    covs = estimate_covariances(x, k=K, models=given, n_samples=200, names=["vae_hetero"])
    ref = VAEHeteroCovariance.from_trained(res, x, n_samples=200).covariance_
    np.testing.assert_allclose(covs["vae_hetero"], ref, rtol=1e-12)


# ---- conditional linear decoder --------------------------------------------------------------------


def _decoded_cov(result, x, labels, condition, cls=CVAECovariance):
    return cls.from_trained(result, x, y=labels, condition=condition, n_samples=500).systematic_


def test_conditional_linear_decoder_shapes_and_regime_loadings():
    m = VAE(6, 2, 8, n_conditions=2, decoder="conditional_linear").eval()
    z = torch.randn(5, 2)
    c = torch.tensor([0, 1, 0, 1, 1])
    assert m.decoder_input(z, c).shape == (5, 2 + 2 + 4)
    assert m.decode(z, c).shape == (5, 6)
    with torch.no_grad():  # decode = W_c z + b_c exactly
        for cond in (0, 1):
            cc = torch.full((5,), cond)
            w_c = m.loadings(cond)
            b_c = m.decoder.bias + m.decoder.weight[:, 2 + cond]
            torch.testing.assert_close(m.decode(z, cc), z @ w_c.T + b_c)
    with pytest.raises(ValueError, match="condition"):
        m.loadings()
    # without a condition it is the linear decoder
    assert VAE(6, 2, 8, decoder="conditional_linear").decoder_input(z).shape == (5, 2)


def test_conditional_linear_decoder_separates_regimes_and_linear_does_not(regime):
    x, labels, b0, b1, cl, lin, pooled = regime
    assert cl.model.decoder_kind == "conditional_linear" and lin.model.decoder_kind == "linear"
    assert pooled.model.decoder_kind == "conditional_linear"
    # the plain linear decoder: the condition only shifts the bias -> identical covariances
    lin0, lin1 = (_decoded_cov(lin, x, labels, c) for c in (0, 1))
    np.testing.assert_allclose(lin0, lin1, rtol=1e-5, atol=1e-6 * np.abs(lin0).max())  # float32
    # the conditional linear decoder: each regime's decoded covariance follows its own loadings
    cl0, cl1 = (_decoded_cov(cl, x, labels, c) for c in (0, 1))
    assert np.abs(cl0 - cl1).max() > 0.2 * np.abs(cl0).max()
    true0, true1 = b0 @ b0.T, b1 @ b1.T

    def rel(a, b):
        return np.linalg.norm(a - b) / np.linalg.norm(b)

    assert rel(cl0, true0) < 0.3 and rel(cl1, true1) < 0.3
    assert rel(cl0, true0) < rel(cl0, true1) and rel(cl1, true1) < rel(cl1, true0)
    assert rel(lin0, true0) > rel(cl0, true0) and rel(lin1, true1) > rel(cl1, true1)
    # the default (partially pooled) CVAE still tells the regimes apart, shrunk towards each other
    po0, po1 = (_decoded_cov(pooled, x, labels, c) for c in (0, 1))
    assert 0.05 * np.abs(po0).max() < np.abs(po0 - po1).max() < np.abs(cl0 - cl1).max()


def test_cvae_decoder_option_and_interaction_prior():
    cfg = TrainConfig()
    assert cfg.cvae_decoder == "conditional_linear" and cfg.interaction_prior_sd == 0.05
    assert cfg.model_decoder(0) == "linear" and cfg.model_decoder(2) == "conditional_linear"
    assert TrainConfig(decoder="mlp", cvae_decoder=None).model_decoder(2) == "mlp"
    for bad in (
        {"cvae_decoder": "conv"},
        {"interaction_prior_sd": 0.0},
        {"interaction_prior_sd": -1},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TrainConfig(**bad).validate()
    assert CVAECovariance().train_config().cvae_decoder == "conditional_linear"
    assert CVAECovariance(decoder="linear").train_config().cvae_decoder == "linear"
    # the prior pulls the per-regime deviations V_c towards 0 (partial pooling)
    x, labels, *_ = regime_panel(t=200, n=12)
    norms = {}
    for sd in (None, 0.02):
        res = train_vae(
            x, TrainConfig(**{**FAST, "epochs": 60}, interaction_prior_sd=sd), conditions=labels
        )
        norms[sd] = float(res.model.interaction_weights().detach().norm())
    assert norms[0.02] < 0.5 * norms[None]
    assert VAE(5, 2, 8, decoder="conditional_linear").interaction_weights() is None


def test_learned_noise_keeps_the_lowest_loss_epoch(hetero):
    _, _, res = hetero
    hist = res.history
    assert res.best_epoch == int(hist.loc[hist["total"].idxmin(), "epoch"])
    assert len(hist) == FAST["epochs"]  # no early stop: every epoch ran


def test_cvae_hetero_residual_is_the_model_noise(regime):
    x, labels, *_ = regime
    res = train_vae(x, TrainConfig(**{**FAST, "epochs": 40}, noise="learned"), conditions=labels)
    est = CVAEHeteroCovariance.from_trained(res, x, y=labels, n_samples=200)
    np.testing.assert_allclose(np.diag(est.idiosyncratic_), model_noise_variance(res), rtol=1e-12)
    assert np.linalg.eigvalsh(est.covariance_)[0] > 0
    assert ESTIMATORS["cvae_hetero"] is CVAEHeteroCovariance
    # the refit's fit_models trains it from the CVAE's config when not given
    cfg = TrainConfig(**{**FAST, "epochs": 20})
    cvae = train_vae(x, cfg, conditions=labels)
    models = fit_models(
        x, labels, cfg, names=["cvae_reference", "cvae_hetero"], given={CVAE_MODEL: cvae}
    )
    assert [k.label for k in models.trained] == ["cvae[noise=learned]"]
    covs = estimate_covariances(x, k=K, models=models, regimes=labels, n_samples=200)
    assert {"cvae_reference", "cvae_hetero", "ledoit_wolf_regime"} <= set(covs)
    assert np.linalg.eigvalsh(covs["cvae_hetero"])[0] > 0


# ---- storage ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decoder", "noise", "conditional"),
    [
        ("linear", "learned", False),
        ("conditional_linear", "fixed", True),
        ("conditional_linear", "learned", True),
        ("linear", "fixed", True),
    ],
)
def test_round_trip_through_model_store(decoder, noise, conditional):
    x, labels, *_ = regime_panel(t=120, n=8)
    cfg = TrainConfig(**{**FAST, "epochs": 5}, cvae_decoder=decoder, noise=noise)
    res = train_vae(x, cfg, conditions=labels if conditional else None)
    model = res.model
    assert model.config()["decoder"] == decoder and model.config()["noise"] == noise
    again = model_from_bytes(model_to_bytes(model), model.config())
    back = record_to_result(result_to_record(res))
    assert back.config == res.config and back.model.config() == model.config()
    for rebuilt in (again, back.model):
        for (k1, v1), (k2, v2) in zip(
            model.state_dict().items(), rebuilt.state_dict().items(), strict=True
        ):
            assert k1 == k2
            torch.testing.assert_close(v1, v2, rtol=0, atol=0)
    cond = labels if conditional else None
    np.testing.assert_allclose(back.reconstruct(x, cond), res.reconstruct(x, cond), rtol=0, atol=0)
    if noise == "learned":
        np.testing.assert_allclose(model_noise_variance(back), model_noise_variance(res), rtol=0)


def test_old_model_config_without_noise_still_loads():
    model = VAE(5, 2, 8)
    config = {k: v for k, v in model.config().items() if k != "noise"}  # stored before the option
    assert model_from_bytes(model_to_bytes(model), config).noise_kind == "fixed"
