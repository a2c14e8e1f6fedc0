"""Tests for vae_pipeline.core.training (train_vae, TrainResult, beta_sweep)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LinearRegression

from vae_pipeline.core.model import VAE, vae_loss
from vae_pipeline.core.training import TrainConfig, TrainResult, beta_sweep, train_vae

T, N = 200, 20
FAST = {"epochs": 60, "hidden": 16, "device": "cpu"}


def _two_factor_panel(seed: int = 42) -> tuple[pd.DataFrame, np.ndarray]:
    """Returns from r = F B' + e with 2 factors (market-like + style) and idiosyncratic noise."""
    rng = np.random.default_rng(seed)
    factors = rng.standard_normal((T, 2)) * np.array([0.012, 0.008])
    loadings = np.column_stack([1.0 + 0.3 * rng.standard_normal(N), rng.standard_normal(N)])
    noise = rng.standard_normal((T, N)) * rng.uniform(0.004, 0.008, N)
    index = pd.bdate_range("2020-01-01", periods=T, name="date")
    returns = pd.DataFrame(
        factors @ loadings.T + noise, index=index, columns=[f"S{i:03d}" for i in range(N)]
    )
    return returns, factors


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return _two_factor_panel()[0]


def _weights(result: TrainResult) -> dict[str, torch.Tensor]:
    return result.model.state_dict()


def test_training_reduces_loss_and_history(panel):
    seen = []
    res = train_vae(
        panel,
        TrainConfig(latent_dim=2, **FAST),
        progress=lambda e, t, r, k: seen.append((e, t, r, k)),
    )
    h = res.history
    assert list(h.columns) == ["epoch", "total", "recon", "kl"]
    assert h["epoch"].tolist() == list(range(1, 61))
    assert h["total"].iloc[-5:].mean() < 0.6 * h["total"].iloc[0]
    np.testing.assert_allclose(h["total"], h["recon"] + 1.0 * h["kl"], rtol=1e-5)
    assert [s[0] for s in seen] == list(range(1, 61))
    assert seen[-1][1] == pytest.approx(h["total"].iloc[-1])
    assert isinstance(res.model, VAE) and not res.model.training
    assert next(res.model.parameters()).device.type == "cpu"
    assert res.device == "cpu" and res.n_conditions == 0 and res.seconds > 0


def test_deterministic_for_seed_and_global_rng_untouched(panel):
    cfg = TrainConfig(latent_dim=2, epochs=20, hidden=16, device="cpu")
    state = torch.random.get_rng_state()
    a, b = train_vae(panel, cfg), train_vae(panel, cfg)
    assert torch.equal(torch.random.get_rng_state(), state)
    wa, wb = _weights(a), _weights(b)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    pd.testing.assert_frame_equal(a.history, b.history)
    c = train_vae(panel, TrainConfig(latent_dim=2, epochs=20, hidden=16, device="cpu", seed=7))
    assert not all(torch.equal(wa[k], _weights(c)[k]) for k in wa)


def test_minibatch_is_deterministic(panel):
    cfg = TrainConfig(latent_dim=2, epochs=5, hidden=16, device="cpu", batch_size=32)
    a, b = train_vae(panel, cfg), train_vae(panel, cfg)
    assert all(torch.equal(_weights(a)[k], _weights(b)[k]) for k in _weights(a))
    assert a.history["total"].iloc[-1] < a.history["total"].iloc[0]


@pytest.mark.parametrize(
    "bad",
    [
        {"latent_dim": 0},
        {"epochs": 0},
        {"beta": -0.1},
        {"lr": 0.0},
        {"decoder": "conv"},
        {"val_fraction": 1.0},
        {"patience": -1},
        {"batch_size": -2},
        {"device": "tpu"},
    ],
)
def test_config_validation(panel, bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        TrainConfig(**bad).validate()
    with pytest.raises(ValueError):
        train_vae(panel, TrainConfig(**bad))


def test_nan_rows_rejected(panel):
    dirty = panel.copy()
    dirty.iloc[3, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train_vae(dirty, TrainConfig(**FAST))


def test_validation_tail_and_early_stopping(panel):
    cfg = TrainConfig(
        latent_dim=2, hidden=16, device="cpu", epochs=2000, val_fraction=0.25, patience=5, lr=3e-2
    )
    res = train_vae(panel, cfg)
    h = res.history
    assert "val_total" in h.columns
    assert len(h) < cfg.epochs
    # Stopped exactly `patience` epochs after the best one, and the best weights were restored.
    best = int(h["val_total"].idxmin())
    assert res.best_epoch == h["epoch"].iloc[best] == len(h) - cfg.patience
    with torch.no_grad():
        xv = torch.from_numpy(res.standardiser.transform(panel.iloc[-50:]))
        xhat, mu, logvar = res.model(xv)
        total = vae_loss(xv, xhat, mu, logvar, cfg.beta)[0].item()
    assert total == pytest.approx(h["val_total"].min(), rel=1e-5)
    # The standardiser saw only the training part (first 150 days).
    np.testing.assert_allclose(res.standardiser.mean_, panel.iloc[:150].mean().to_numpy())


def test_beta_sweep_higher_beta_lower_kl(panel):
    out = beta_sweep(panel, [0.1, 1.0, 20.0], TrainConfig(latent_dim=2, **FAST))
    assert list(out.columns) == ["beta", "recon", "kl", "active_dims"]
    assert out["kl"].is_monotonic_decreasing and out["kl"].iloc[0] > 2 * out["kl"].iloc[-1]
    assert out["recon"].iloc[-1] > out["recon"].iloc[0]
    assert out["active_dims"].iloc[0] == 2
    assert out["active_dims"].between(0, 2).all()


def test_cvae_needs_conditions(panel):
    labels = (np.arange(T) >= T // 2).astype(int)
    res = train_vae(panel, TrainConfig(latent_dim=2, **FAST), conditions=labels)
    assert res.n_conditions == 2 and res.model.n_conditions == 2
    assert res.encode_mean(panel, labels).shape == (T, 2)
    assert res.reconstruct(panel, labels).shape == (T, N)
    with pytest.raises(ValueError, match="conditions"):
        res.encode_mean(panel)
    with pytest.raises(ValueError, match="conditions"):
        res.reconstruct(panel)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        train_vae(panel, TrainConfig(**FAST), conditions=labels, n_conditions=1)
    with pytest.raises(ValueError, match="length"):
        train_vae(panel, TrainConfig(**FAST), conditions=labels[:-1])
    plain = train_vae(panel, TrainConfig(latent_dim=2, epochs=2, hidden=16, device="cpu"))
    with pytest.raises(ValueError, match="unconditional"):
        plain.encode_mean(panel, labels)


def test_single_label_still_two_conditions(panel):
    res = train_vae(
        panel,
        TrainConfig(latent_dim=2, epochs=2, hidden=16, device="cpu"),
        conditions=np.zeros(T, dtype=int),
    )
    assert res.n_conditions == 2


def test_recovers_two_factor_model():
    returns, factors = _two_factor_panel()
    res = train_vae(returns, TrainConfig(latent_dim=2, epochs=150, hidden=16, device="cpu"))
    mu = res.encode_mean(returns)
    assert mu.shape == (T, 2)
    for j in range(2):
        r2 = LinearRegression().fit(mu, factors[:, j]).score(mu, factors[:, j])
        assert r2 > 0.8, f"factor {j}: R^2 {r2:.3f}"
    # Reconstruction is in return units and explains most of the variance.
    recon = res.reconstruct(returns)
    resid = returns.to_numpy() - recon
    assert resid.var() < 0.5 * returns.to_numpy().var()
    assert np.abs(recon).mean() == pytest.approx(np.abs(returns.to_numpy()).mean(), rel=0.3)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_trains_on_gpu(panel):
    res = train_vae(
        panel,
        TrainConfig(latent_dim=2, epochs=30, hidden=16, device="cuda"),
        conditions=(np.arange(T) % 2),
    )
    assert res.device.startswith("cuda")
    assert next(res.model.parameters()).device.type == "cpu"
    assert res.history["total"].iloc[-1] < res.history["total"].iloc[0]
    assert res.encode_mean(panel, np.arange(T) % 2).shape == (T, 2)
