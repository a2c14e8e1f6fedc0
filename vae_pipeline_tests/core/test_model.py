"""Tests for vae_pipeline.core.model (VAE / CVAE, loss, device, serialisation)."""

from __future__ import annotations

import io

import pytest
import torch

from vae_pipeline.core.model import (
    LOGVAR_MAX,
    VAE,
    model_from_bytes,
    model_to_bytes,
    resolve_device,
    vae_loss,
)

T, N, K = 32, 20, 3


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(T, N, generator=torch.Generator().manual_seed(42))


def _model(**kw) -> VAE:
    torch.manual_seed(42)
    return VAE(N, latent_dim=K, hidden=16, **kw)


@pytest.mark.parametrize("decoder", ["linear", "mlp"])
def test_vae_shapes(x, decoder):
    m = _model(decoder=decoder)
    mu, logvar = m.encode(x)
    assert mu.shape == logvar.shape == (T, K)
    assert m.decode(mu).shape == (T, N)
    xhat, mu2, logvar2 = m(x)
    assert xhat.shape == (T, N) and mu2.shape == (T, K) and logvar2.shape == (T, K)
    assert m.config() == {
        "n_inputs": N,
        "latent_dim": K,
        "hidden": 16,
        "n_conditions": 0,
        "decoder": decoder,
        "noise": "fixed",
    }


@pytest.mark.parametrize("decoder", ["linear", "mlp"])
def test_cvae_shapes_and_condition_changes_decoder(x, decoder):
    m = _model(n_conditions=2, decoder=decoder).eval()
    labels0 = torch.zeros(T, dtype=torch.long)
    labels1 = torch.ones(T, dtype=torch.long)
    mu, logvar = m.encode(x, labels0)
    assert mu.shape == logvar.shape == (T, K)
    out0, out1 = m.decode(mu, labels0), m.decode(mu, labels1)
    assert out0.shape == (T, N)
    assert not torch.allclose(out0, out1)
    # Encoder sees the condition too.
    assert not torch.allclose(m.encode(x, labels1)[0], mu)
    # Int labels and one-hot give the same thing.
    onehot = torch.nn.functional.one_hot(labels1, 2).float()
    torch.testing.assert_close(m(x, onehot)[0], m(x, labels1)[0])


def test_condition_required_and_rejected(x):
    with pytest.raises(ValueError, match="condition"):
        _model(n_conditions=2).encode(x)
    with pytest.raises(ValueError, match="unconditional"):
        _model().encode(x, torch.zeros(T, dtype=torch.long))
    with pytest.raises(ValueError, match="shape"):
        _model(n_conditions=3).encode(x, torch.zeros(T, 2))


def test_bad_constructor_args():
    with pytest.raises(ValueError, match="decoder"):
        VAE(N, decoder="conv")
    with pytest.raises(ValueError):
        VAE(N, latent_dim=0)


def test_eval_forward_uses_mean_train_forward_samples(x):
    m = _model().eval()
    a, mu, _ = m(x)
    torch.testing.assert_close(a, m.decode(mu))
    m.train()
    g = torch.Generator().manual_seed(1)
    s1, s2 = m(x, generator=g)[0], m(x, generator=g)[0]
    assert not torch.allclose(s1, s2)


def test_logvar_is_clamped(x):
    m = _model()
    with torch.no_grad():
        m.enc_head.bias[K:] = 1e4
    _, logvar = m.encode(x)
    assert torch.all(logvar == LOGVAR_MAX)
    assert torch.isfinite(vae_loss(x, m(x)[0], *m.encode(x), beta=1.0)[0])


def test_vae_loss_parts(x):
    m = _model()
    xhat, mu, logvar = m(x)
    for beta in (0.0, 0.5, 4.0):
        total, recon, kl = vae_loss(x, xhat, mu, logvar, beta)
        assert recon.item() >= 0 and kl.item() >= 0
        torch.testing.assert_close(total, recon + beta * kl)
    # Closed form: recon is the per-day sum of squares averaged over days; KL is 0 at the prior.
    zeros = torch.zeros(T, K)
    total, recon, kl = vae_loss(x, torch.zeros_like(x), zeros, zeros, 1.0)
    torch.testing.assert_close(recon, x.pow(2).sum(1).mean())
    assert kl.item() == pytest.approx(0.0, abs=1e-7)
    # KL of N(1, 1) vs N(0, 1) is 0.5 per dim.
    _, _, kl = vae_loss(x, x, torch.ones(T, K), zeros, 1.0)
    assert kl.item() == pytest.approx(0.5 * K)


def test_bytes_round_trip(x):
    m = _model(n_conditions=2, decoder="mlp").eval()
    blob = model_to_bytes(m)
    assert isinstance(blob, bytes)
    back = model_from_bytes(blob, m.config())
    assert not back.training
    c = torch.ones(T, dtype=torch.long)
    torch.testing.assert_close(back(x, c)[0], m(x, c)[0], rtol=0, atol=0)
    # The blob is a plain state dict: loadable with weights_only=True.
    state = torch.load(io.BytesIO(blob), weights_only=True)
    assert set(state) == set(m.state_dict())


def test_resolve_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device().type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            resolve_device("cuda:0")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_model_on_gpu(x):
    m = _model(n_conditions=2).to(resolve_device("cuda:0"))
    xhat, _, _ = m(x.cuda(), torch.zeros(T, dtype=torch.long, device="cuda"))
    assert xhat.is_cuda
