"""Latent interpretation: |corr| with observables, true-factor recovery, linear baselines."""

import numpy as np
import pandas as pd
import pytest

from vae_pipeline.core.interpretation import (
    baseline_latents,
    factor_recovery_r2,
    interpret,
    latent_observable_corr,
)
from vae_pipeline.core.results import LatentInterpretation

T, N = 500, 30


@pytest.fixture(scope="module")
def world():
    """Three true factors, observables built from them, and a 30-stock panel."""
    rng = np.random.default_rng(42)
    dates = pd.bdate_range("2020-01-01", periods=T, name="date")
    factors = pd.DataFrame(
        rng.normal(0, 0.01, size=(T, 3)), index=dates, columns=["market", "style_1", "style_2"]
    )
    vol_change = rng.normal(0, 1.0, T)
    observables = pd.DataFrame(
        {
            "market": factors["market"],
            "volatility": 20 + np.cumsum(vol_change),  # a level series (random walk)
            "macro_slope": 1 + np.cumsum(rng.normal(0, 0.05, T)),
            "regime": (np.arange(T) > T // 2).astype(int),
        },
        index=dates,
    )
    loadings = rng.normal(0, 1, size=(N, 3))
    loadings[:, 0] += 1.0  # everyone loads on the market
    returns = pd.DataFrame(
        factors.to_numpy() @ loadings.T + rng.normal(0, 0.003, size=(T, N)),
        index=dates,
        columns=[f"S{i:03d}" for i in range(N)],
    )
    return dict(
        rng=rng,
        dates=dates,
        factors=factors,
        obs=observables,
        returns=returns,
        vol_change=vol_change,
    )


def test_recovery_r2_near_one_for_rotated_factors(world):
    rng, factors = world["rng"], world["factors"]
    rotation = rng.normal(size=(3, 3))  # any invertible mix
    z = factors.to_numpy() @ rotation + rng.normal(0, 1e-4, size=(T, 3))
    latents = pd.DataFrame(z, index=world["dates"], columns=["z0", "z1", "z2"])
    r2 = factor_recovery_r2(latents, factors)
    assert len(r2) == 3
    assert min(r2) > 0.98


def test_recovery_r2_near_zero_for_independent_noise(world):
    rng = np.random.default_rng(7)
    latents = pd.DataFrame(rng.normal(size=(T, 3)), index=world["dates"])
    r2 = factor_recovery_r2(latents, world["factors"])
    assert max(r2) < 0.05 and min(r2) >= 0.0


def test_recovery_aligns_on_dates(world):
    factors = world["factors"]
    latents = factors.iloc[::-1].rename(columns=lambda c: f"z_{c}")  # same rows, reversed order
    assert min(factor_recovery_r2(latents, factors)) > 0.999


def test_abs_corr_range_and_market_latent_wins(world):
    rng, factors, obs = world["rng"], world["factors"], world["obs"]
    latents = pd.DataFrame(
        {
            "z_market": factors["market"] + rng.normal(0, 0.002, T),
            "z_style": factors["style_1"],
            "z_vol": world["vol_change"] + rng.normal(0, 0.3, T),
            "z_dead": np.zeros(T),  # a collapsed latent
        },
        index=world["dates"],
    )
    corr = latent_observable_corr(latents, obs)
    assert list(corr.index) == list(latents.columns)
    assert {
        "market",
        "volatility",
        "macro_slope",
        "regime",
        "volatility_change",
        "macro_slope_change",
    } == set(corr.columns)
    assert ((corr >= 0) & (corr <= 1)).all().all()
    assert corr["market"].idxmax() == "z_market" and corr.loc["z_market", "market"] > 0.9
    # A returns-like latent tracks the change of a level series, not the level.
    assert corr["volatility_change"].idxmax() == "z_vol"
    assert corr.loc["z_vol", "volatility_change"] > 0.8
    assert corr.loc["z_vol", "volatility"] < 0.3
    assert (corr.loc["z_dead"] == 0).all()


def test_constant_observable_dropped(world):
    obs = world["obs"].assign(regime=0)
    corr = latent_observable_corr(world["factors"], obs)
    assert "regime" not in corr.columns and "market" in corr.columns


def test_no_common_dates_raises(world):
    shifted = world["factors"].set_index(world["dates"] + pd.Timedelta(days=10_000))
    with pytest.raises(ValueError, match="common dates"):
        latent_observable_corr(shifted, world["obs"])


@pytest.mark.parametrize("method", ["pca", "factor_analysis"])
def test_baseline_latents_recover_factors(world, method):
    base = baseline_latents(world["returns"], k=3, method=method)
    assert base.shape == (T, 3)
    assert base.index.equals(world["dates"])
    assert list(base.columns) == [f"{method}_{j}" for j in range(3)]
    assert min(factor_recovery_r2(base, world["factors"])) > 0.9


def test_baseline_latents_deterministic_and_validated(world):
    a = baseline_latents(world["returns"], k=2, method="factor_analysis", seed=42)
    b = baseline_latents(world["returns"], k=2, method="factor_analysis", seed=42)
    pd.testing.assert_frame_equal(a, b)
    with pytest.raises(ValueError):
        baseline_latents(world["returns"], k=2, method="ica")
    with pytest.raises(ValueError):
        baseline_latents(world["returns"], k=0)


def test_interpret_bundles_everything(world):
    factors, returns, obs = world["factors"], world["returns"], world["obs"]
    latents = baseline_latents(returns, k=3, method="pca").rename(columns=lambda c: "v" + c)
    baselines = {m: baseline_latents(returns, k=3, method=m) for m in ("pca", "factor_analysis")}
    result = interpret(latents, obs, true_factors=factors, baselines=baselines)
    assert isinstance(result, LatentInterpretation)
    assert result.factor_names == ["market", "style_1", "style_2"]
    assert set(result.recovery_r2) == {"vae", "pca", "factor_analysis"}
    assert all(len(v) == 3 for v in result.recovery_r2.values())
    assert result.best_abs_corr["market"] == pytest.approx(max(result.abs_corr["market"]))
    assert result.best_abs_corr["market"] > 0.8
    assert set(result.baseline_best_abs_corr) == {"pca", "factor_analysis"}
    assert LatentInterpretation.model_validate(result.model_dump()) == result


def test_interpret_without_truth(world):
    result = interpret(world["factors"], world["obs"])
    assert result.recovery_r2 is None and result.factor_names == []
    assert result.latent_names == ["market", "style_1", "style_2"]
