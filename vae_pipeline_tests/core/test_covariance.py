"""Covariance estimators: shapes, PSD, library agreement, shrinkage quality, sklearn API, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.covariance import LedoitWolf
from sklearn.decomposition import FactorAnalysis

from vae_pipeline.core.covariance import (
    ESTIMATORS,
    CVAECovariance,
    FactorAnalysisCovariance,
    LedoitWolfCovariance,
    NonlinearShrinkage,
    OracleCovariance,
    PCACovariance,
    RegimeConditional,
    SampleCovariance,
    VAECovariance,
    VAEPosteriorCovariance,
    VAEShrunkCovariance,
    make_estimator,
)
from vae_pipeline.core.training import TrainConfig, train_vae

SEED = 42
T, N, K = 160, 12, 2
TINY_VAE = dict(epochs=20, hidden=16, n_samples=500, device="cpu")


def factor_panel(t: int = T, n: int = N, k: int = K, seed: int = SEED) -> pd.DataFrame:
    """Daily-return-scale panel from a k-factor model (dates as index, tickers as columns)."""
    rng = np.random.default_rng(seed)
    loadings = rng.normal(1.0, 0.5, (n, k))
    f = rng.standard_normal((t, k)) * 0.01
    e = rng.standard_normal((t, n)) * 0.01 * rng.uniform(0.5, 1.5, n)
    idx = pd.bdate_range("2020-01-01", periods=t, name="date")
    return pd.DataFrame(f @ loadings.T + e, index=idx, columns=[f"S{i:03d}" for i in range(n)])


def spiked(n: int, seed: int) -> np.ndarray:
    """Covariance with three spikes over a flat bulk, random eigenvectors."""
    rng = np.random.default_rng(seed)
    ev = np.ones(n)
    ev[:3] = [20.0, 10.0, 5.0]
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return (q * ev) @ q.T


def draw(cov: np.ndarray, t: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((t, cov.shape[0])) @ np.linalg.cholesky(cov).T


def labels_for(t: int) -> np.ndarray:
    """Two regimes in 40-day blocks (for T = 160 the last block is regime 1)."""
    return ((np.arange(t) // 40) % 2).astype(int)


def assert_valid_cov(cov: np.ndarray, n: int) -> None:
    assert cov.shape == (n, n)
    assert cov.dtype == np.float64
    assert np.isfinite(cov).all()
    np.testing.assert_allclose(cov, cov.T, rtol=0, atol=1e-15 * np.abs(cov).max())
    assert np.linalg.eigvalsh(cov)[0] >= -1e-12 * np.abs(cov).max()


def classical(name: str, panel: pd.DataFrame):
    if name == "oracle":
        return OracleCovariance(covariance=np.cov(panel.to_numpy(), rowvar=False))
    return make_estimator(name)


CLASSICAL = ["sample", "ledoit_wolf", "nonlinear_shrinkage", "pca", "factor_analysis", "oracle"]
VAE_NAMES = ["vae", "vae_posterior", "vae_shrunk"]


@pytest.fixture(scope="module")
def panel() -> pd.DataFrame:
    return factor_panel()


# ---------------------------------------------------------------------------------------------
# every estimator: a valid covariance, same from DataFrame and ndarray


@pytest.mark.parametrize("name", CLASSICAL + ["ledoit_wolf_regime"])
def test_classical_estimators_give_symmetric_psd(panel, name):
    y = labels_for(len(panel)) if name == "ledoit_wolf_regime" else None
    est = classical(name, panel).fit(panel, y)
    assert_valid_cov(est.covariance_, N)
    from_array = clone(classical(name, panel)).fit(panel.to_numpy(), y).covariance_
    np.testing.assert_allclose(from_array, est.covariance_, rtol=1e-12, atol=0)


@pytest.mark.parametrize("name", VAE_NAMES)
def test_vae_estimators_give_positive_definite(panel, name):
    est = make_estimator(name, **TINY_VAE).fit(panel)
    assert_valid_cov(est.covariance_, N)
    # the idiosyncratic part makes it full rank although the systematic part has rank <= k
    assert np.linalg.eigvalsh(est.covariance_)[0] > 0
    assert np.linalg.matrix_rank(est.systematic_, tol=1e-10 * np.abs(est.systematic_).max()) <= 4
    np.testing.assert_allclose(est.covariance_, est.systematic_ + est.idiosyncratic_, rtol=1e-12)


def test_registry_names_and_make_estimator():
    assert set(ESTIMATORS) >= {
        "sample",
        "ledoit_wolf",
        "nonlinear_shrinkage",
        "pca",
        "factor_analysis",
        "vae",
        "vae_posterior",
        "vae_shrunk",
        "cvae",
        "cvae_reference",
        "oracle",
        "ledoit_wolf_regime",
    }
    assert make_estimator("pca", n_components=3).n_components == 3
    with pytest.raises(ValueError, match="unknown estimator"):
        make_estimator("no_such_thing")


# ---------------------------------------------------------------------------------------------
# agreement with scikit-learn


@pytest.mark.parametrize(("t", "n"), [(160, 12), (50, 80), (30, 1), (300, 200)])
def test_ledoit_wolf_equals_sklearn(t, n):
    x = factor_panel(t, n, k=1).to_numpy() if n > 1 else draw(np.eye(1) * 1e-4, t, 1)
    ours = LedoitWolfCovariance().fit(x)
    ref = LedoitWolf().fit(x)
    scale = np.abs(ref.covariance_).max()
    np.testing.assert_allclose(
        ours.covariance_ / scale, ref.covariance_ / scale, rtol=0, atol=1e-10
    )
    assert ours.shrinkage_ == pytest.approx(ref.shrinkage_, abs=1e-10)
    assert 0.0 <= ours.shrinkage_ <= 1.0


def test_factor_analysis_equals_sklearn(panel):
    ours = FactorAnalysisCovariance(n_components=3).fit(panel).covariance_
    ref = FactorAnalysis(n_components=3, random_state=42).fit(panel.to_numpy()).get_covariance()
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=0)


@pytest.mark.parametrize("standardise", [False, True])
def test_pca_is_top_k_plus_diagonal(panel, standardise):
    est = PCACovariance(n_components=K, standardise=standardise).fit(panel)
    sample = np.cov(panel.to_numpy(), rowvar=False)
    # total variance per stock is preserved (the floor is not hit on this panel)
    np.testing.assert_allclose(np.diag(est.covariance_), np.diag(sample), rtol=1e-10)
    off = est.covariance_ - np.diag(np.diag(est.covariance_))
    systematic = est.loadings_ @ est.loadings_.T
    np.testing.assert_allclose(off, systematic - np.diag(np.diag(systematic)), atol=1e-15)
    # the systematic part is the top-k eigen part of the covariance (or of the correlation)
    sd = np.sqrt(np.diag(sample)) if standardise else np.ones(len(sample))
    scaled = sample / np.outer(sd, sd)
    top = np.linalg.eigvalsh(scaled)[::-1][:K]
    got = np.linalg.eigvalsh(systematic / np.outer(sd, sd))[::-1][:K]
    np.testing.assert_allclose(got, top, rtol=1e-10)


def test_pca_lanczos_path_matches_dense_eigendecomposition():
    x = factor_panel(400, 320, k=3).to_numpy()  # N >= LANCZOS_MIN_N: the ARPACK path
    est = PCACovariance(n_components=4, standardise=False).fit(x)
    sample = np.cov(x, rowvar=False)
    lam, vecs = np.linalg.eigh(sample)
    b = vecs[:, -4:] * np.sqrt(lam[-4:])
    dense = b @ b.T + np.diag(np.diag(sample) - np.einsum("ik,ik->i", b, b))
    scale = np.abs(dense).max()
    np.testing.assert_allclose(est.covariance_ / scale, dense / scale, rtol=0, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# nonlinear shrinkage


@pytest.mark.parametrize(("t", "n"), [(50, 80), (200, 100), (100, 200), (500, 100)])
def test_nonlinear_shrinkage_beats_sample_on_spiked_model(t, n):
    sigma = spiked(n, seed=SEED)
    x = draw(sigma, t, seed=SEED + 1)
    nls = NonlinearShrinkage().fit(x).covariance_
    assert_valid_cov(nls, n)
    assert np.linalg.eigvalsh(nls)[0] > 0  # positive definite even when N > T

    def loss(c):
        return np.linalg.norm(c - sigma)

    lw = LedoitWolfCovariance().fit(x).covariance_
    sample = SampleCovariance().fit(x).covariance_
    assert loss(nls) < 0.9 * loss(sample)
    assert loss(nls) <= 1.05 * loss(lw)
    assert np.linalg.cond(nls) < np.linalg.cond(sample)


def test_nonlinear_shrinkage_pulls_identity_spectrum_together():
    x = draw(np.eye(100), 400, seed=SEED)
    sample_ev = np.linalg.eigvalsh(SampleCovariance().fit(x).covariance_)
    est = NonlinearShrinkage().fit(x)
    # Marchenko-Pastur spreads the sample spectrum over ~[0.25, 2.25]; the truth is all ones.
    assert sample_ev[-1] / sample_ev[0] > 4
    assert np.abs(est.eigenvalues_ - 1).max() < 0.25
    assert est.eigenvalues_.shape == (100,)


def test_epanechnikov_hilbert_transform_matches_quadrature_near_and_far():
    from scipy.integrate import quad

    from vae_pipeline.core.covariance.nonlinear_shrinkage import _epanechnikov_hilbert

    s5 = np.sqrt(5.0)

    def kernel(u):
        return 3.0 / (4.0 * s5) * (1.0 - u * u / 5.0) / np.pi

    xs = np.array([-50.0, -3.0, 0.5, 2.0, 19.9, 20.1, 1e3, 1e7])
    # (1/pi) PV int K(u) / (u - x) du by QUADPACK's Cauchy-weight rule.
    exact = [quad(kernel, -s5, s5, weight="cauchy", wvar=x)[0] for x in xs]
    np.testing.assert_allclose(_epanechnikov_hilbert(xs), exact, rtol=1e-6, atol=0)


def test_nonlinear_shrinkage_keeps_an_isolated_spike_over_a_near_singular_bulk():
    # Real-data regression (S&P 500 window ending in the 2020 crash): a market eigenvalue ~1e6
    # times the smallest one made the far-kernel Hilbert terms cancel catastrophically and the
    # spike came out 0.17 -> 3e-6, so the "min-variance" portfolio predicted 0.1 % vol.
    rng = np.random.default_rng(SEED)
    n, t = 90, 100
    vals = np.concatenate([np.geomspace(1e-7, 1e-4, n - 1), [0.2]])
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    sigma = (q * vals) @ q.T
    x = draw(sigma, t, seed=SEED + 1)
    sample_top = np.linalg.eigvalsh(np.cov(x, rowvar=False))[-1]
    est = NonlinearShrinkage().fit(x)
    # A spike far above the bulk is consistent: shrinkage leaves it within a few per cent.
    assert abs(est.eigenvalues_[-1] / sample_top - 1) < 0.05
    assert np.isfinite(est.covariance_).all()


def test_nonlinear_shrinkage_needs_enough_days():
    with pytest.raises(ValueError, match="effective sample size"):
        NonlinearShrinkage().fit(draw(np.eye(5), 12, seed=SEED))


# ---------------------------------------------------------------------------------------------
# VAE covariances


@pytest.fixture(scope="module")
def trained(panel):
    return train_vae(panel, TrainConfig(epochs=20, hidden=16, device="cpu"))


def test_vae_systematic_part_matches_linear_decoder(panel, trained):
    est = VAECovariance.from_trained(trained, panel, n_samples=4000)
    w = trained.model.loadings().numpy().astype(np.float64) * trained.standardiser.scale_[:, None]
    exact = w @ w.T  # z ~ N(0, I) through a linear decoder, in return units
    rel = np.linalg.norm(est.systematic_ - exact) / np.linalg.norm(exact)
    assert rel < 0.1
    resid = panel.to_numpy() - trained.reconstruct(panel)
    np.testing.assert_allclose(np.diag(est.idiosyncratic_), resid.var(axis=0, ddof=1), rtol=1e-12)
    assert np.count_nonzero(est.idiosyncratic_ - np.diag(np.diag(est.idiosyncratic_))) == 0


def test_vae_from_trained_equals_fit_and_is_seeded(panel, trained):
    fitted = VAECovariance(latent_dim=4, epochs=20, hidden=16, device="cpu").fit(panel)
    reused = VAECovariance.from_trained(trained, panel)
    np.testing.assert_allclose(reused.covariance_, fitted.covariance_, rtol=1e-6)
    other_seed = VAECovariance.from_trained(trained, panel, seed=7)
    assert not np.allclose(other_seed.covariance_, reused.covariance_, rtol=1e-6)
    assert reused.result_ is trained
    # clone keeps the trained model as a parameter: refitting reuses it (no training)
    refit = clone(reused).fit(panel)
    np.testing.assert_allclose(refit.covariance_, reused.covariance_, rtol=1e-12)


def test_vae_variants_differ_from_reference(panel, trained):
    ref = VAECovariance.from_trained(trained, panel)
    post = VAEPosteriorCovariance.from_trained(trained, panel)
    shrunk = VAEShrunkCovariance.from_trained(trained, panel)
    np.testing.assert_allclose(shrunk.systematic_, ref.systematic_)  # same systematic part
    assert np.count_nonzero(shrunk.idiosyncratic_ - np.diag(np.diag(shrunk.idiosyncratic_))) > 0
    np.testing.assert_allclose(post.idiosyncratic_, ref.idiosyncratic_)  # same residual part
    assert not np.allclose(post.systematic_, ref.systematic_, rtol=1e-3)


def test_cvae_uses_the_regime_at_the_decision_date(panel):
    y = labels_for(len(panel))
    est = CVAECovariance(**TINY_VAE).fit(panel, y)
    assert_valid_cov(est.covariance_, N)
    assert est.condition_ == y[-1] == 1
    assert est.n_days_used_ == int((y == 1).sum())
    other = CVAECovariance(condition=0, trained=est.result_, n_samples=500).fit(panel, y)
    assert other.condition_ == 0
    assert not np.allclose(other.covariance_, est.covariance_, rtol=1e-3)
    # too few days in the current regime -> residual variance from all days
    y_short = np.zeros(len(panel), dtype=int)
    y_short[-5:] = 1
    few = CVAECovariance(trained=est.result_, n_samples=500).fit(panel, y_short)
    assert few.n_days_used_ == len(panel)
    with pytest.raises(ValueError, match="labels"):
        CVAECovariance(**TINY_VAE).fit(panel)
    with pytest.raises(ValueError, match="condition 5"):
        CVAECovariance(condition=5, trained=est.result_).fit(panel, y)


def test_regime_conditional_fits_only_current_regime(panel):
    y = labels_for(len(panel))
    est = RegimeConditional(min_days=30).fit(panel, y)
    ref = LedoitWolf().fit(panel.to_numpy()[y == y[-1]]).covariance_
    np.testing.assert_allclose(est.covariance_, ref, rtol=1e-10, atol=1e-18)
    assert est.n_days_used_ == int((y == y[-1]).sum())
    fallback = RegimeConditional(min_days=1000).fit(panel, y)
    np.testing.assert_allclose(
        fallback.covariance_, LedoitWolf().fit(panel).covariance_, rtol=1e-10
    )


# ---------------------------------------------------------------------------------------------
# sklearn API and errors


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_get_set_params_and_clone(name):
    est = make_estimator(name)
    params = est.get_params()
    assert isinstance(params, dict)
    if "n_components" in params:
        est.set_params(n_components=3)
        assert clone(est).get_params()["n_components"] == 3
    elif "seed" in params:
        est.set_params(seed=7)
        assert clone(est).get_params()["seed"] == 7
    twin = clone(est)
    assert twin is not est and twin.get_params().keys() == params.keys()
    assert not hasattr(twin, "covariance_")


@pytest.mark.parametrize("name", sorted(set(ESTIMATORS) - {"oracle"}))
def test_nan_and_too_short_raise(panel, name):
    bad = panel.copy()
    bad.iloc[3, 2] = np.nan
    est = make_estimator(name, **(TINY_VAE if "vae" in name else {}))
    y = labels_for(len(panel))
    with pytest.raises(ValueError, match="NaN"):
        est.fit(bad, y)
    with pytest.raises(ValueError, match="at least"):
        est.fit(panel.iloc[:1], y[:1])


@pytest.mark.parametrize("cls", [PCACovariance, FactorAnalysisCovariance])
def test_too_many_components_raise(panel, cls):
    with pytest.raises(ValueError, match="smaller than the number of stocks"):
        cls(n_components=N).fit(panel)
    with pytest.raises(ValueError, match="positive integer"):
        cls(n_components=0).fit(panel)


def test_vae_latent_dim_too_large_raises(panel):
    with pytest.raises(ValueError, match="smaller than the number of stocks"):
        VAECovariance(latent_dim=N, **TINY_VAE).fit(panel)


def test_oracle_validates_its_matrix(panel):
    sigma = spiked(N, seed=1)
    got = OracleCovariance(covariance=sigma).fit(panel).covariance_
    np.testing.assert_allclose(got, sigma, rtol=1e-14, atol=1e-15)
    with pytest.raises(ValueError, match="no covariance"):
        OracleCovariance().fit(panel)
    asym = sigma.copy()
    asym[0, 1] += 1.0
    with pytest.raises(ValueError, match="not symmetric"):
        OracleCovariance(covariance=asym).fit()
    with pytest.raises(ValueError, match="positive semi-definite"):
        OracleCovariance(covariance=-sigma).fit()
    with pytest.raises(ValueError, match="columns"):
        OracleCovariance(covariance=np.eye(N + 1)).fit(panel)
