"""Tests of the synthetic ground-truth panel (vae_pipeline.core.synthetic)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vae_pipeline.core.synthetic import FACTORS, OBSERVABLES, SyntheticPanel, generate_panel

ANN = np.sqrt(252)


@pytest.fixture(scope="module")
def panel() -> SyntheticPanel:
    return generate_panel(seed=42)


@pytest.fixture(scope="module")
def regime_panel() -> SyntheticPanel:
    return generate_panel(seed=42, kind="regime")


def _residuals(p: SyntheticPanel) -> pd.DataFrame:
    """Returns less the true systematic part (linear kind: constant loadings)."""
    return p.returns - p.factors.to_numpy() @ p.loadings.to_numpy().T


def _minvar(cov: np.ndarray) -> np.ndarray:
    w = np.linalg.solve(cov, np.ones(len(cov)))
    return w / w.sum()


# --- determinism and prefix stability ---------------------------------------------------


def test_same_seed_same_panel_other_seed_differs(panel):
    again = generate_panel(seed=42)
    pd.testing.assert_frame_equal(panel.returns, again.returns, check_exact=True)
    pd.testing.assert_frame_equal(panel.observables, again.observables, check_exact=True)
    pd.testing.assert_frame_equal(panel.factors, again.factors, check_exact=True)
    other = generate_panel(seed=43)
    assert not np.allclose(panel.returns.to_numpy(), other.returns.to_numpy())
    assert not np.allclose(panel.loadings.to_numpy(), other.loadings.to_numpy())


@pytest.mark.parametrize("kind", ["linear", "regime"])
def test_prefix_stable(kind):
    short = generate_panel(n_days=400, kind=kind, n_names=25, n_sectors=5)
    long = generate_panel(n_days=700, kind=kind, n_names=25, n_sectors=5)
    for name in ("returns", "observables", "factors"):
        a, b = getattr(short, name), getattr(long, name).iloc[:400]
        assert a.index.equals(b.index)
        assert np.array_equal(a.to_numpy(), b.to_numpy()), name  # bit-identical
    for name in ("loadings", "sectors", "anomaly", "idio_vol"):
        assert getattr(short, name).equals(getattr(long, name)), name
    day = short.returns.index[-1]
    assert np.array_equal(short.true_covariance(day), long.true_covariance(day))


def test_end_and_n_days_agree():
    by_n = generate_panel(n_days=300, n_names=12, n_sectors=3)
    by_end = generate_panel(end=by_n.returns.index[-1], n_names=12, n_sectors=3)
    pd.testing.assert_frame_equal(by_n.returns, by_end.returns, check_exact=True)


# --- calendar, shapes, names ------------------------------------------------------------


def test_trading_day_index(panel):
    idx = panel.returns.index
    assert idx.name == "date" and len(idx) == 1260
    assert idx[0] == pd.Timestamp("2015-01-02") and idx.is_monotonic_increasing
    assert (idx.dayofweek < 5).all()
    for holiday in ("2015-12-25", "2016-07-04", "2017-01-02", "2018-11-22"):
        assert pd.Timestamp(holiday) not in idx
    assert pd.Timestamp("2016-07-05") in idx
    by_end = generate_panel(start="2020-03-02", end="2020-03-31", n_names=6, n_sectors=2)
    assert len(by_end.returns) == 22 and by_end.returns.index[-1] == pd.Timestamp("2020-03-31")


def test_shapes_and_names(panel):
    tickers = [f"S{i:03d}" for i in range(60)]
    assert list(panel.returns.columns) == tickers
    assert list(panel.observables.columns) == OBSERVABLES
    assert list(panel.factors.columns) == FACTORS == ["market", "style_1", "style_2", "style_3"]
    assert panel.loadings.shape == (60, 4) and list(panel.loadings.index) == tickers
    for series in (panel.sectors, panel.anomaly, panel.idio_vol):
        assert list(series.index) == tickers
    assert panel.sectors.nunique() == 6 and panel.sectors.map(type).eq(str).all()
    assert panel.anomaly.dtype == bool and panel.anomaly.sum() == 6
    assert set(panel.observables["regime"].unique()) == {0, 1}
    assert pd.api.types.is_integer_dtype(panel.observables["regime"])
    assert panel.kind == "linear" and panel.seed == 42
    assert np.isfinite(panel.returns.to_numpy()).all()
    wide = generate_panel(n_days=3, n_names=1200, n_sectors=12, anomaly_fraction=0.0)
    assert wide.returns.columns[0] == "S0000" and wide.returns.columns[-1] == "S1199"
    assert wide.anomaly.sum() == 1  # at least one planted anomaly


# --- calibration and structure ----------------------------------------------------------


def test_calibration(panel):
    vols = panel.returns.loc[:, ~panel.anomaly].std() * ANN
    assert 0.15 < vols.min() and vols.max() < 0.40 and 0.20 < vols.median() < 0.35
    assert 0.007 < panel.observables["market"].std() < 0.013
    assert panel.idio_vol.between(0.008, 0.025).all()
    betas = panel.loadings["market"]
    assert betas.between(0.6, 1.4).all() and betas.std() > 0.1


def test_loadings_are_sector_structured(panel):
    styles = panel.loadings[["style_1", "style_2", "style_3"]]
    within = styles.groupby(panel.sectors).var().mean().mean()
    assert within < 0.5 * styles.var().mean()


def test_market_drives_cross_section(panel):
    x = panel.returns.to_numpy()
    u, _, _ = np.linalg.svd(x - x.mean(0), full_matrices=False)
    market = panel.factors["market"].to_numpy()
    assert abs(np.corrcoef(u[:, 0], market)[0, 1]) > 0.9
    r2 = panel.returns.apply(lambda r: np.corrcoef(r, market)[0, 1] ** 2)
    assert r2.mean() > 0.2
    assert np.array_equal(panel.observables["market"].to_numpy(), market)


def test_vol_index_drives_factor_vol(panel):
    obs = panel.observables
    assert 9 < obs["volatility"].min() and obs["volatility"].max() < 80
    assert 12 < obs["volatility"].median() < 25
    # realised market vol over the next 21 days follows the index at the close
    forward_vol = obs["market"].rolling(21).std().shift(-21)
    assert forward_vol.corr(obs["volatility"]) > 0.4
    # leverage effect: the index rises on down days
    assert obs["market"].iloc[1:].corr(obs["volatility"].diff().iloc[1:]) < -0.3


def test_macro_slope_prices_style_1(panel):
    slope = panel.observables["macro_slope"]
    assert -3 < slope.min() and slope.max() < 5 and slope.std() > 0.2
    corr = panel.factors["style_1"].iloc[1:].corr(slope.diff().iloc[1:])
    assert corr > 0.5
    assert abs(panel.factors["style_2"].iloc[1:].corr(slope.diff().iloc[1:])) < 0.15


def test_regime_follows_trailing_trend(panel):
    obs = panel.observables
    trend = np.log1p(obs["market"]).rolling(63, min_periods=1).sum()
    expected = (trend < 0).astype(int)
    clear = trend.abs() > 1e-12  # float ties could go either way
    assert (obs["regime"][clear] == expected[clear]).all()
    assert 0.1 < obs["regime"].mean() < 0.6


# --- anomalies --------------------------------------------------------------------------


def test_anomalies_are_fat_tailed_and_draw_down(panel):
    resid = _residuals(panel)
    flag = panel.anomaly
    kurt = resid.kurt()
    assert kurt[flag].min() > kurt[~flag].max()
    path = resid.cumsum()
    drawdown = (path - path.cummax()).min()
    assert drawdown[flag].mean() < drawdown[~flag].mean() - 0.3
    # after a burst day the name drifts down over the next 40 days
    names = flag.index[flag]
    z = resid[names] / panel.idio_vol[names]
    forward = resid[names].rolling(40).sum().shift(-40)
    after_burst = forward[z.abs() > 5].stack()
    assert len(after_burst) > 20 and after_burst.mean() < -0.02


# --- oracle covariance ------------------------------------------------------------------


def test_true_covariance_is_pd_and_calibrated(panel):
    idx = panel.returns.index
    x = panel.returns.to_numpy()
    cov = panel.true_covariance(idx[100])
    assert cov.shape == (60, 60) and np.array_equal(cov, cov.T)
    assert np.linalg.eigvalsh(cov).min() > 0
    # the oracle min-var portfolio: plausible vol, and its forecast matches the realised
    port, forecast, var_fc = [], [], []
    for t in range(len(idx) - 1):
        cov = panel.true_covariance(idx[t])
        w = _minvar(cov)
        port.append(x[t + 1] @ w)
        forecast.append(np.sqrt(w @ cov @ w))
        var_fc.append(np.diag(cov))
    port, forecast, var_fc = np.array(port), np.array(forecast), np.array(var_fc)
    assert 0.08 < port.std() * ANN < 0.12
    assert 0.8 < np.std(port / forecast) < 1.2
    # variance forecasts vs realised squared returns, normal and anomaly names apart
    realised, flag = x[1:] ** 2, panel.anomaly.to_numpy()
    assert 0.9 < realised[:, ~flag].mean() / var_fc[:, ~flag].mean() < 1.1
    assert 0.75 < realised[:, flag].mean() / var_fc[:, flag].mean() < 1.33


def test_true_covariance_dates(panel):
    idx = panel.returns.index
    saturday = pd.Timestamp("2015-01-10")
    assert np.array_equal(panel.true_covariance(saturday), panel.true_covariance("2015-01-09"))
    assert not np.allclose(panel.true_covariance(idx[10]), panel.true_covariance(idx[500]))
    with pytest.raises(ValueError, match="outside the panel"):
        panel.true_covariance("2014-12-31")
    with pytest.raises(ValueError, match="outside the panel"):
        panel.true_covariance(idx[-1] + pd.Timedelta(days=1))


# --- regime kind ------------------------------------------------------------------------


def test_regime_kind_shifts_loadings_and_vols(panel, regime_panel):
    p = regime_panel
    exp, con = p.regime_loadings(0), p.regime_loadings(1)
    assert exp.equals(p.loadings)
    assert (con["market"] > exp["market"]).all()
    assert np.abs(con.to_numpy()[:, 1:] - exp.to_numpy()[:, 1:]).mean() > 0.1
    assert panel.regime_loadings(1).equals(panel.regime_loadings(0))
    # same macro path as the linear panel, but style vols rise after contraction closes
    assert np.array_equal(p.observables.to_numpy(), panel.observables.to_numpy())
    prev = p.observables["regime"].shift(1).fillna(0).astype(bool)
    styles = p.factors[["style_1", "style_2", "style_3"]]
    assert (styles[prev].std() > 1.3 * styles[~prev].std()).all()
    # interaction: style_1 exposure is concentrated in low-idio-vol names
    low = p.idio_vol < p.idio_vol.median()
    assert exp["style_1"].abs()[low].mean() > 1.5 * exp["style_1"].abs()[~low].mean()
    # the oracle sees the regime
    days = p.observables.index
    con_day = days[p.observables["regime"].to_numpy() == 1][0]
    exp_day = days[days < con_day][-1]
    beta_exp = p.true_covariance(exp_day).sum(1)
    beta_con = p.true_covariance(con_day).sum(1)
    assert not np.allclose(beta_exp, beta_con)


def test_regime_kind_betas_visible_in_data(regime_panel):
    p = regime_panel
    prev = p.observables["regime"].shift(1).fillna(0).astype(bool).to_numpy()
    x, m = p.returns.to_numpy(), p.factors["market"].to_numpy()

    def betas(mask):
        mm = m[mask] - m[mask].mean()
        return (x[mask] - x[mask].mean(0)).T @ mm / (mm @ mm)

    assert betas(prev).mean() > betas(~prev).mean() + 0.05


# --- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "quadratic"}, "kind"),
        ({"n_names": 0, "n_sectors": 1}, "n_names"),
        ({"n_names": 4, "n_sectors": 6}, "n_sectors"),
        ({"n_days": 0}, "n_days"),
        ({"end": "2014-12-01"}, "before start"),
        ({"end": "2015-06-01", "n_days": 10}, "exactly one"),
        ({"anomaly_fraction": 1.5}, "anomaly_fraction"),
    ],
)
def test_bad_inputs_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_panel(**kwargs)
