"""Min-variance harness: closed-form weights, the (T-2)/(T-N-1) anchor, walk-forward, bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vae_pipeline.core.covariance import (
    LedoitWolfCovariance,
    PCACovariance,
    RegimeConditional,
    SampleCovariance,
)
from vae_pipeline.core.minvar import (
    WalkForwardResult,
    minvar_weights,
    paired_bootstrap,
    realised_vol,
    single_split,
    walk_forward,
)

SEED = 42


def random_cov(n: int, seed: int = SEED) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n, n))
    return (a @ a.T / n + 0.5 * np.eye(n)) * 1e-4


def gaussian_panel(t: int, cov: np.ndarray, seed: int = SEED) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((t, cov.shape[0])) @ np.linalg.cholesky(cov).T
    idx = pd.bdate_range("2019-01-01", periods=t, name="date")
    return pd.DataFrame(x, index=idx, columns=[f"S{i:03d}" for i in range(cov.shape[0])])


# ---------------------------------------------------------------------------------------------
# weights and vol


def test_minvar_weights_diagonal_closed_form():
    var = np.array([1.0, 2.0, 4.0, 8.0]) * 1e-4
    w = minvar_weights(np.diag(var))
    expected = (1 / var) / (1 / var).sum()
    np.testing.assert_allclose(w, expected, rtol=1e-12)
    assert w.sum() == pytest.approx(1.0, abs=1e-12)


def test_minvar_weights_general_first_order_condition():
    cov = random_cov(15)
    w = minvar_weights(pd.DataFrame(cov))
    assert w.sum() == pytest.approx(1.0, abs=1e-12)
    grad = cov @ w  # proportional to the ones vector at the minimum
    np.testing.assert_allclose(grad, np.full(15, grad.mean()), rtol=1e-9)
    # and it beats a perturbed portfolio that also sums to one
    alt = w + np.r_[0.01, -0.01, np.zeros(13)]
    assert w @ cov @ w < alt @ cov @ alt


def test_minvar_weights_reject_bad_matrices():
    x = np.random.default_rng(SEED).standard_normal((10, 20))
    with pytest.raises(ValueError, match="singular or not positive definite"):
        minvar_weights(np.cov(x, rowvar=False))  # N > T: rank-deficient
    with pytest.raises(ValueError, match="NaN"):
        minvar_weights(np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="square"):
        minvar_weights(np.ones((3, 4)))
    with pytest.raises(ValueError, match="singular or not positive definite"):
        minvar_weights(-np.eye(3))


def test_realised_vol_is_annualised_std():
    r = np.random.default_rng(SEED).standard_normal((500, 3)) * 0.01
    w = np.array([0.5, 0.3, 0.2])
    assert realised_vol(w, r) == pytest.approx(np.std(r @ w, ddof=1) * np.sqrt(252), rel=1e-12)
    with pytest.raises(ValueError, match="weights"):
        realised_vol(w[:2], r)


# ---------------------------------------------------------------------------------------------
# the harness anchor (docs/architecture.md section 5)


@pytest.mark.parametrize(("t", "n", "draws"), [(120, 20, 3000), (40, 20, 4000)])
def test_sample_minvar_anchor_matches_theory(t, n, draws):
    """E[w' Sigma w] / sigma_min^2 = (T-2)/(T-N-1) for the demeaned sample covariance (Gaussian).

    Uses the exact conditional out-of-sample variance w' Sigma w of each draw (no simulated test
    returns), which pins the mean to ~0.1-0.4 %.
    """
    sigma = random_cov(n)
    chol = np.linalg.cholesky(sigma)
    ones = np.ones(n)
    var_min = 1.0 / (ones @ np.linalg.solve(sigma, ones))
    rng = np.random.default_rng(SEED)
    ratios = np.empty(draws)
    for d in range(draws):
        x = rng.standard_normal((t, n)) @ chol.T
        w = minvar_weights(SampleCovariance().fit(x).covariance_)
        ratios[d] = w @ sigma @ w / var_min
    expected = (t - 2) / (t - n - 1)
    assert ratios.min() >= 1.0 - 1e-9  # nothing beats the true minimum
    assert ratios.mean() == pytest.approx(expected, rel=0.02)
    if t - n < 30:
        # close to N the known-mean formula (T-1)/(T-N) differs by > 2 %: a harness that forgot
        # the degree of freedom spent on the mean would land nearer to it
        known_mean = (t - 1) / (t - n)
        assert abs(ratios.mean() - expected) < 0.5 * abs(ratios.mean() - known_mean)


# ---------------------------------------------------------------------------------------------
# walk-forward


def make_three(_date):
    return {
        "sample": SampleCovariance(),
        "ledoit_wolf": LedoitWolfCovariance(),
        "pca": PCACovariance(n_components=2),
    }


@pytest.fixture(scope="module")
def wf_panel() -> pd.DataFrame:
    return gaussian_panel(260, random_cov(8))


def test_walk_forward_shapes_and_holding(wf_panel):
    res = walk_forward(wf_panel, make_three, window=100, rebalance=20)
    assert isinstance(res, WalkForwardResult)
    assert list(res.daily.index) == list(wf_panel.index[100:])
    assert set(res.daily.columns) == {"sample", "ledoit_wolf", "pca"}
    assert not res.daily.isna().any().any()
    assert res.decision_dates == list(wf_panel.index[[99, 119, 139, 159, 179, 199, 219, 239]])
    # the 2nd decision's weights produce the daily returns of rows 120..139
    w = res.weights["sample"].iloc[1].to_numpy()
    expected = wf_panel.iloc[120:140].to_numpy() @ w
    np.testing.assert_allclose(res.daily["sample"].iloc[20:40].to_numpy(), expected, rtol=1e-12)
    # and those weights are the min-var weights of rows 20..119
    refit = minvar_weights(SampleCovariance().fit(wf_panel.iloc[20:120]).covariance_)
    np.testing.assert_allclose(w, refit, rtol=1e-10)
    summary = res.summary()
    assert list(summary.columns) == ["estimator", "vol", "gap_to_oracle", "n_rebalances"]
    assert summary["vol"].is_monotonic_increasing
    assert (summary["n_rebalances"] == 8).all()
    assert summary["gap_to_oracle"].isna().all()  # no oracle given


@pytest.mark.parametrize("cut", [140, 150])  # 140 = first holding day of the 140-row decision
def test_walk_forward_has_no_look_ahead(wf_panel, cut):
    """Perturbing returns from row ``cut`` on leaves every decision taken before ``cut`` alone."""
    base = walk_forward(wf_panel, make_three, window=100, rebalance=20)
    shocked = wf_panel.copy()
    shocked.iloc[cut:] = shocked.iloc[cut:] * 3.0 + 0.01
    moved = walk_forward(shocked, make_three, window=100, rebalance=20)
    before = [d for d in base.decision_dates if wf_panel.index.get_loc(d) < cut]
    after = [d for d in base.decision_dates if wf_panel.index.get_loc(d) >= cut]
    assert before and after
    early = base.daily.index < wf_panel.index[cut]
    for name in base.weights:
        pd.testing.assert_frame_equal(
            base.weights[name].loc[before], moved.weights[name].loc[before]
        )
        # the perturbation does reach later decisions (so the check above can fail)
        assert not np.allclose(base.weights[name].loc[after], moved.weights[name].loc[after])
        pd.testing.assert_series_equal(base.daily[name][early], moved.daily[name][early])


def test_walk_forward_oracle_fit_kwargs_and_progress(wf_panel):
    sigma = random_cov(8)
    labels = pd.Series((np.arange(len(wf_panel)) // 30) % 2, index=wf_panel.index)
    seen: list[tuple[str, int, object]] = []
    steps: list[int] = []

    def fit_kwargs(name, train, decision):
        seen.append((name, len(train), decision))
        assert train.index[-1] == decision
        return {"y": labels.loc[train.index]} if name == "lw_regime" else {}

    res = walk_forward(
        wf_panel,
        lambda d: {"lw_regime": RegimeConditional(min_days=20), "sample": SampleCovariance()},
        window=100,
        rebalance=40,
        fit_kwargs=fit_kwargs,
        oracle=lambda d: sigma,
        progress=lambda step, total, d: steps.append(step),
    )
    assert steps == [1, 2, 3, 4]
    assert {s[1] for s in seen} == {100}
    summary = res.summary().set_index("estimator")
    assert summary.loc["oracle", "gap_to_oracle"] == 0.0
    np.testing.assert_allclose(
        summary["gap_to_oracle"], summary["vol"] - summary.loc["oracle", "vol"], rtol=1e-12
    )
    np.testing.assert_allclose(res.weights["oracle"].iloc[0], minvar_weights(sigma), rtol=1e-12)
    with pytest.raises(ValueError, match="no out-of-sample"):
        walk_forward(wf_panel.iloc[:50], make_three, window=100)


def test_single_split_with_oracle_and_kwargs(wf_panel):
    sigma = random_cov(8)
    out = single_split(
        wf_panel,
        {"sample": SampleCovariance(), "regime": RegimeConditional(min_days=10)},
        train_frac=0.5,
        oracle_cov=sigma,
        fit_kwargs=lambda name, train, d: (
            {"y": np.zeros(len(train), int)} if name == "regime" else {}
        ),
    )
    assert list(out.columns) == ["estimator", "vol", "gap_to_oracle"]
    assert set(out["estimator"]) == {"sample", "regime", "oracle"}
    test = wf_panel.iloc[130:]
    w = minvar_weights(SampleCovariance().fit(wf_panel.iloc[:130]).covariance_)
    vol = out.set_index("estimator").loc["sample", "vol"]
    assert vol == pytest.approx(realised_vol(w, test), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# paired bootstrap


def test_paired_bootstrap_identical_distributions_contain_zero():
    rng = np.random.default_rng(SEED)
    common = rng.standard_normal(1000) * 0.008
    a = common + rng.standard_normal(1000) * 0.004
    b = common + rng.standard_normal(1000) * 0.004
    diff, lo, hi = paired_bootstrap(a, b)
    assert lo < 0 < hi
    assert lo < diff < hi
    assert diff == pytest.approx((np.std(a, ddof=1) - np.std(b, ddof=1)) * np.sqrt(252))
    assert paired_bootstrap(a, b) == (diff, lo, hi)  # seeded


def test_paired_bootstrap_excludes_zero_for_a_clear_winner():
    rng = np.random.default_rng(SEED)
    idx = pd.bdate_range("2020-01-01", periods=1000)
    common = rng.standard_normal(1000) * 0.008
    better = pd.Series(common + rng.standard_normal(1000) * 0.002, index=idx)
    worse = pd.Series(common * 1.1 + rng.standard_normal(1000) * 0.006, index=idx)
    diff, lo, hi = paired_bootstrap(worse, better)
    assert 0 < lo < diff < hi
    with pytest.raises(ValueError, match="length"):
        paired_bootstrap(np.ones(5), np.ones(6))
