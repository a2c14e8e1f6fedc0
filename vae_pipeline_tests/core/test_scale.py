"""Scale fixes (issue 6): each fast path equals the slow computation it replaces.

Speed itself is measured by ``benchmarks/run_all.py`` (never by a timed unit test).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from vae_pipeline.core.covariance import LedoitWolfCovariance, NonlinearShrinkage, PCACovariance
from vae_pipeline.core.covariance._validation import symmetrise
from vae_pipeline.core.covariance.nonlinear_shrinkage import shrunk_eigenvalues
from vae_pipeline.core.covariance.spectrum import LANCZOS_MIN_N, min_eigenvalue
from vae_pipeline.core.model import VAE, vae_loss
from vae_pipeline.core.training import _LinearDecoderLoss

REPO = Path(__file__).resolve().parents[2]


def _factor_panel(t: int, n: int, seed: int = 42) -> np.ndarray:
    rng = np.random.default_rng(seed)
    loadings = rng.normal([1.0, 0.0, 0.0], 0.5, (n, 3))
    factors = rng.standard_normal((t, 3)) * np.array([0.01, 0.005, 0.004])
    return factors @ loadings.T + rng.standard_normal((t, n)) * rng.uniform(0.01, 0.02, n)


@pytest.mark.parametrize("n_conditions", [0, 2])
def test_linear_decoder_loss_equals_the_generic_loss_and_gradients(n_conditions):
    torch.manual_seed(0)
    model = VAE(120, 4, 32, n_conditions=n_conditions).train()
    x = torch.randn(200, 120)
    c = torch.eye(2)[torch.randint(0, 2, (200,))] if n_conditions else None
    xhat, mu, logvar = model(x, c, generator=torch.Generator().manual_seed(1))
    slow = vae_loss(x, xhat, mu, logvar, 1.0)
    model.zero_grad()
    slow[0].backward()
    slow_grads = [p.grad.clone() for p in model.parameters()]
    fast = _LinearDecoderLoss(model, x).loss(model, c, torch.Generator().manual_seed(1), 1.0)
    model.zero_grad()
    fast[0].backward()
    for a, b in zip(slow, fast, strict=True):
        assert float(b.detach()) == pytest.approx(float(a.detach()), rel=1e-5)
    for a, b in zip(slow_grads, (p.grad for p in model.parameters()), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4 * float(a.abs().max()))


@pytest.mark.parametrize(("t", "n"), [(60, 200), (100, 150), (41, 100)])
def test_nonlinear_shrinkage_above_t_equals_the_full_eigendecomposition(t, n):
    x = _factor_panel(t, n)
    est = NonlinearShrinkage().fit(x)
    xc = x - x.mean(axis=0)
    lam, vecs = np.linalg.eigh(xc.T @ xc / (t - 1))
    d = shrunk_eigenvalues(lam, t - 1)
    ref = symmetrise((vecs * d) @ vecs.T)
    np.testing.assert_allclose(est.covariance_, ref, rtol=0, atol=1e-9 * np.abs(ref).max())
    np.testing.assert_allclose(est.eigenvalues_, d, rtol=1e-8)


@pytest.fixture
def lanczos_from_200(monkeypatch):
    """The Lanczos path from N = 200 (it starts at LANCZOS_MIN_N = 1000 in the pipeline)."""
    from vae_pipeline.core.covariance import spectrum

    assert LANCZOS_MIN_N >= 500
    monkeypatch.setattr(spectrum, "LANCZOS_MIN_N", 200)


@pytest.mark.parametrize("estimator", [LedoitWolfCovariance(), PCACovariance(3)])
def test_min_eigenvalue_by_lanczos_equals_eigvalsh(estimator, lanczos_from_200):
    cov = estimator.fit(_factor_panel(150, 300)).covariance_
    exact = np.linalg.eigvalsh(cov)[0]
    assert min_eigenvalue(cov) == pytest.approx(exact, rel=1e-8)
    assert min_eigenvalue(cov) == min_eigenvalue(cov)  # deterministic (fixed start vector)


def test_min_eigenvalue_of_an_indefinite_matrix_is_exact(lanczos_from_200):
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.standard_normal((300, 300)))
    cov = symmetrise((q * np.linspace(-1e-3, 1.0, 300)) @ q.T)
    assert min_eigenvalue(cov) == pytest.approx(-1e-3, rel=1e-6)


def test_sample_covariance_is_left_out_when_singular():
    from vae_pipeline.core.refit import estimate_covariances

    cols = [f"s{i}" for i in range(40)]
    wide = pd.DataFrame(_factor_panel(41, 40), columns=cols)
    assert "sample" not in estimate_covariances(wide, k=2)  # N = T - 1: singular
    tall = pd.DataFrame(_factor_panel(120, 40), columns=cols)
    assert "sample" in estimate_covariances(tall, k=2)


def test_min_variance_decisions_keep_one_row_per_name_and_the_true_min_eigenvalue():
    from vae_pipeline.core.refit import min_variance_decisions

    x = _factor_panel(200, 30)
    covs = {"ledoit_wolf": LedoitWolfCovariance().fit(x).covariance_,
            "pca": PCACovariance(3).fit(x).covariance_}  # fmt: skip
    tickers = [f"s{i}" for i in range(30)]
    decisions = min_variance_decisions(covs, tickers)
    frame, summary = decisions.frame, decisions.summary
    assert not decisions.psd_problems and not decisions.weight_problems and len(summary) == 2
    assert len(frame) == 60 and set(frame["estimator"]) == set(covs)
    for name, cov in covs.items():
        rows = frame[frame["estimator"] == name]
        assert rows["weight"].sum() == pytest.approx(1.0)
        assert rows["min_eigenvalue"].iloc[0] == pytest.approx(np.linalg.eigvalsh(cov)[0])


def test_importing_the_package_makes_idle_openmp_threads_sleep():
    code = "import os; os.environ.pop('OMP_WAIT_POLICY', None); import vae_pipeline; print(os.environ['OMP_WAIT_POLICY'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.stdout.strip() == "PASSIVE", out.stderr


@pytest.mark.slow
def test_refit_benchmark_runs_end_to_end():
    """benchmarks/refit.py, both modes, at N = 60 with 5 epochs (a smoke test, not a timing)."""
    for mode in ("direct", "dagster"):
        out = subprocess.run(
            [sys.executable, "benchmarks/refit.py", "--n", "60", "--mode", mode, "--epochs", "5",
             "--history", "560", "--instance", "memory"],
            cwd=REPO, capture_output=True, text=True, timeout=900,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        record = json.loads(out.stdout.strip().splitlines()[-1])
        assert record["seconds"] > 0 and record["peak_rss"] > 0
        if mode == "dagster":
            assert record["rows"]["covariance_estimates"] > 0 and record["partition_bytes"] > 0
