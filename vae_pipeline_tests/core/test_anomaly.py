"""Anomaly analysis: errors, residual returns, drawdowns, the confounder-controlled test."""

import numpy as np
import pandas as pd
import pytest

from vae_pipeline.core.anomaly import (
    anomaly_test,
    flag_anomalies,
    market_residual_returns,
    max_drawdown,
    reconstruction_error,
)
from vae_pipeline.core.results import AnomalyTest

N_STOCKS, T_FUTURE = 300, 126


def test_reconstruction_error_per_stock():
    x = pd.DataFrame({"A": [1.0, -1.0, 0.0], "B": [2.0, 2.0, 2.0]})
    xhat = np.array([[0.0, 2.0], [-1.0, 2.0], [3.0, 2.0]])
    err = reconstruction_error(x, xhat)
    assert list(err.index) == ["A", "B"]
    assert err["A"] == pytest.approx((1 + 0 + 9) / 3) and err["B"] == 0.0
    with pytest.raises(ValueError):
        reconstruction_error(x, xhat[:2])


def test_market_residual_removes_beta_keeps_drift():
    rng = np.random.default_rng(42)
    dates = pd.bdate_range("2021-01-01", periods=250, name="date")
    market = pd.Series(rng.normal(0, 0.01, 250), index=dates)
    beta, alpha = np.array([0.5, 1.0, 1.5]), np.array([0.0, -0.001, 0.002])
    returns = pd.DataFrame(alpha + np.outer(market, beta), index=dates, columns=["A", "B", "C"])
    resid = market_residual_returns(returns, market)
    # Noiseless: beta is exact, and the residual is the stock's own drift (alpha is kept).
    np.testing.assert_allclose(resid.to_numpy(), np.broadcast_to(alpha, (250, 3)), atol=1e-12)
    noisy = returns + rng.normal(0, 0.01, size=returns.shape)
    resid = market_residual_returns(noisy, market)
    assert np.abs(np.corrcoef(resid.T.to_numpy(), market.to_numpy())[-1, :-1]).max() < 1e-10


def test_max_drawdown_known_path():
    path = pd.Series([0.10, -0.20, 0.05, -0.10])
    # wealth 1, 1.1, 0.88, 0.924, 0.8316: peak 1.1, trough 0.8316
    assert max_drawdown(path) == pytest.approx(0.8316 / 1.1 - 1)
    # summed path 0, .1, -.1, -.05, -.15: peak .1, trough -.15
    assert max_drawdown(path, compound=False) == pytest.approx(-0.25)
    frame = pd.DataFrame({"up": [0.01, 0.02, 0.0], "first_day_loss": [-0.1, 0.05, 0.0]})
    dd = max_drawdown(frame)
    assert dd["up"] == 0.0
    assert dd["first_day_loss"] == pytest.approx(-0.1)  # the start counts as a peak


def test_flag_anomalies_exactly_twenty_percent():
    rng = np.random.default_rng(42)
    errors = pd.Series(rng.exponential(size=60), index=[f"S{i:03d}" for i in range(60)])
    flags = flag_anomalies(errors)
    assert flags.dtype == bool and flags.sum() == 12
    assert errors[flags].min() > errors[~flags].max()
    ties = flag_anomalies(pd.Series(np.ones(10)), top_fraction=0.2)
    assert ties.sum() == 2 and ties.iloc[:2].all()  # deterministic tie-break
    with pytest.raises(ValueError):
        flag_anomalies(errors, top_fraction=1.0)


def _cross_section(planted_effect: bool, seed: int = 42):
    """Errors and later residual paths driven by idio vol, optionally plus planted anomalies."""
    rng = np.random.default_rng(seed)
    tickers = [f"S{i:03d}" for i in range(N_STOCKS)]
    vol = rng.lognormal(np.log(0.015), 0.4, N_STOCKS)  # daily residual vol
    errors = vol**2 * rng.lognormal(0, 0.3, N_STOCKS)  # noisy function of idio vol only
    future = rng.normal(0, 1, (T_FUTURE, N_STOCKS)) * vol
    planted = np.zeros(N_STOCKS, dtype=bool)
    if planted_effect:
        planted[rng.choice(N_STOCKS, N_STOCKS // 5, replace=False)] = True
        errors[planted] *= 3.0  # poorly reconstructed ...
        future[:, planted] -= 0.002  # ... and drift down afterwards
    dates = pd.bdate_range("2022-01-03", periods=T_FUTURE, name="date")
    return (
        pd.Series(errors, index=tickers),
        pd.DataFrame(future, index=dates, columns=tickers),
        pd.Series(vol, index=tickers),
        pd.Series(planted, index=tickers),
    )


def test_partial_rho_near_zero_when_vol_explains_everything():
    errors, future, vol, _ = _cross_section(planted_effect=False)
    res = anomaly_test(errors, future, vol)
    assert isinstance(res, AnomalyTest)
    assert res.n_high == 60 and res.n_low == 240
    # The naive split is fooled by the confounder ...
    assert res.high_error_mean_dd < res.low_error_mean_dd - 0.03
    # ... the partial rank correlation is not.
    assert abs(res.partial_rho_given_idio_vol) < 0.15
    lo, hi = res.partial_rho_ci
    assert lo < 0 < hi
    assert res.error_vs_anomaly_rho is None


def test_partial_rho_positive_with_planted_anomalies():
    errors, future, vol, planted = _cross_section(planted_effect=True)
    res = anomaly_test(errors, future, vol, planted=planted)
    assert res.partial_rho_given_idio_vol > 0.2
    assert res.partial_rho_ci[0] > 0.05
    assert res.error_vs_anomaly_rho > 0.3
    assert res.high_error_mean_dd < res.low_error_mean_dd


def test_anomaly_test_deterministic_and_aligned():
    errors, future, vol, planted = _cross_section(planted_effect=True)
    a = anomaly_test(errors, future, vol, planted=planted, n_boot=200, seed=3)
    b = anomaly_test(
        errors.iloc[::-1],
        future,
        vol.sample(frac=1.0, random_state=1),
        planted=planted,
        n_boot=200,
        seed=3,
    )
    assert a.partial_rho_given_idio_vol == pytest.approx(b.partial_rho_given_idio_vol)
    assert a.error_vs_anomaly_rho == pytest.approx(b.error_vs_anomaly_rho)
    assert a == anomaly_test(errors, future, vol, planted=planted, n_boot=200, seed=3)
    # No stock planted: the correlation with the flag is undefined, reported as None.
    none_planted = anomaly_test(errors, future, vol, planted=planted & False, n_boot=50)
    assert none_planted.error_vs_anomaly_rho is None
    with pytest.raises(ValueError, match="common"):
        anomaly_test(errors.iloc[:3], future, vol)
