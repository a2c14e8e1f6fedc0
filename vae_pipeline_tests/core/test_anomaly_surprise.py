"""The standardised surprise (the recent reconstruction error in units of each stock's own
learned noise) and the error change: scale-free, a planted recent shock ranks high, and the
anomaly stage carries the surprise beside the unchanged error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vae_pipeline.core.anomaly import (
    error_change,
    flag_anomalies,
    reconstruction_error,
    standardised_surprise,
)
from vae_pipeline.core.refit import ANOMALY_REPORT_COLUMNS, evaluate_anomalies
from vae_pipeline.core.refit.anomalies import noise_variances, standardised_residuals, surprises
from vae_pipeline.core.synthetic import generate_panel
from vae_pipeline.core.training import TrainConfig, train_vae
from vae_pipeline.store.schemas import SCHEMAS

SEED = 42
HEADLINE = dict(fit="converged", noise="learned", decoder="linear", encoder="linear")


def _headline(window: pd.DataFrame):
    return train_vae(window, TrainConfig(latent_dim=2, seed=SEED, device="cpu", **HEADLINE))


@pytest.fixture(scope="module")
def panel():
    return generate_panel(n_days=140, n_names=15, kind="linear", seed=SEED)


def test_scores_are_scale_free_where_the_raw_error_is_not():
    rng = np.random.default_rng(SEED)
    resid = pd.DataFrame(rng.standard_normal((60, 5)), columns=list("abcde"))
    psi = pd.Series(rng.uniform(0.5, 2.0, 5), index=resid.columns)
    scaled, scaled_psi = resid.copy(), psi.copy()
    scaled["c"] *= 3.0
    scaled_psi["c"] *= 9.0
    zeros = np.zeros(resid.shape)
    raw, raw_scaled = reconstruction_error(resid, zeros), reconstruction_error(scaled, zeros)
    assert raw_scaled["c"] == pytest.approx(9.0 * raw["c"])
    pd.testing.assert_series_equal(
        standardised_surprise(scaled, scaled_psi, 21), standardised_surprise(resid, psi, 21)
    )
    pd.testing.assert_series_equal(error_change(scaled, 21), error_change(resid, 21))
    with pytest.raises(ValueError, match="recent_days"):
        standardised_surprise(resid, psi, 60)
    with pytest.raises(ValueError, match="noise_var"):
        standardised_surprise(resid, psi.to_numpy()[:4], 21)


def test_a_stocks_surprise_ignores_its_scale_through_the_model(panel):
    """Three times a stock's returns: the model's standardiser and learned noise absorb it, so
    its surprise is unchanged while its error in return units grows nine-fold."""
    window = panel.returns.iloc[:100]
    scaled = window.copy()
    name = window.columns[4]
    scaled[name] *= 3.0
    a, b = _headline(window), _headline(scaled)
    assert a.model.noise_logvar() is not None
    np.testing.assert_allclose(surprises(b, scaled), surprises(a, window), rtol=1e-4)
    raw_a = ((window - a.reconstruct(window)) ** 2).mean()
    raw_b = ((scaled - b.reconstruct(scaled)) ** 2).mean()
    assert raw_b[name] == pytest.approx(9.0 * raw_a[name], rel=1e-3)


def test_a_planted_recent_shock_ranks_high(panel):
    """An idiosyncratic shock over a stock's last 21 days (3x its own sd): without it the
    name's surprise is ordinary, with it the name is among the top 20 % (flagged) by surprise
    and by error change."""
    window = panel.returns.iloc[:100].copy()
    name = window.columns[7]
    before = surprises(_headline(window), window)
    assert not flag_anomalies(before)[name]
    rng = np.random.default_rng(SEED)
    window.iloc[-21:, 7] += rng.normal(0.0, 3.0 * window[name].std(), 21)
    model = _headline(window)
    s = surprises(model, window)
    assert np.isfinite(s).all() and flag_anomalies(s)[name]
    assert s[name] > 2.0 * before[name]
    resid = standardised_residuals(model, window)
    assert flag_anomalies(error_change(resid))[name]
    assert (noise_variances(model, resid) > 0).all()


def test_the_stage_carries_a_finite_surprise(panel):
    train, held = panel.returns.iloc[:100], panel.returns.iloc[100:121]
    now = panel.returns.iloc[21:121]
    market = panel.observables["market"]
    model = _headline(train)
    report = evaluate_anomalies(model, now, market, model, train, held, seed=SEED)
    frame = report.frame
    assert list(frame.columns) == ANOMALY_REPORT_COLUMNS
    assert SCHEMAS["anomaly_report"].names == ["date", "ticker", *ANOMALY_REPORT_COLUMNS]
    assert np.isfinite(frame["surprise"]).all() and np.isfinite(frame["decision_surprise"]).all()
    test = report.test
    assert -1.0 <= test.surprise_partial_rho <= 1.0
    lo, hi = test.surprise_partial_rho_ci
    assert lo <= hi
    assert "surprise_partial_rho" in report.metadata()
    # a fixed-noise model falls back on each name's empirical residual level: still finite
    fixed = train_vae(train, TrainConfig(latent_dim=2, epochs=15, seed=SEED, device="cpu"))
    assert fixed.model.noise_logvar() is None
    assert np.isfinite(surprises(fixed, now)).all()
