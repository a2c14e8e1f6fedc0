"""Configuration from the environment, the trading calendar, and the data-quality rules."""

import pandas as pd
import pytest

from vae_pipeline.core.calendar import (
    is_trading_day,
    latest_trading_day,
    shift_trading_days,
    trading_days,
)
from vae_pipeline.core.horse_race import summarise_scorecards
from vae_pipeline.core.panel import window_panel
from vae_pipeline.core.validation import check_returns
from vae_pipeline.settings import PipelineSettings


def test_defaults_and_environment_overrides():
    s = PipelineSettings.from_env({})
    assert (s.window, s.horizon, s.latent_dim, s.source) == (504, 21, 4, "synthetic")
    s = PipelineSettings.from_env({"VAE_PIPELINE_WINDOW": "60", "VAE_PIPELINE_LATENT": "3"})
    assert (s.window, s.latent_dim) == (60, 3)


@pytest.mark.parametrize("env, message", [
    ({"VAE_PIPELINE_BETA": "-1"}, "VAE_PIPELINE_BETA"),
    ({"VAE_PIPELINE_EPOCHS": "0"}, "VAE_PIPELINE_EPOCHS"),
    ({"VAE_PIPELINE_LATENT": "0"}, "VAE_PIPELINE_LATENT"),
    ({"VAE_PIPELINE_LATENT": "60"}, "must be below n_names"),
    ({"VAE_PIPELINE_SOURCE": "bloomberg"}, "VAE_PIPELINE_SOURCE"),
    ({"VAE_PIPELINE_START": "yesterday-ish"}, "is not a date"),
    ({"VAE_PIPELINE_WINDOW": "abc"}, "VAE_PIPELINE_WINDOW"),
])
def test_bad_configuration_names_the_variable(env, message):
    with pytest.raises(ValueError, match=message):
        PipelineSettings.from_env(env)


def test_calendar_knows_nyse_holidays():
    days = trading_days("2024-11-25", "2024-12-02")
    assert pd.Timestamp("2024-11-28") not in days  # Thanksgiving
    assert len(days) == 5
    assert not is_trading_day("2015-04-03")  # Good Friday: NYSE closed, not a federal holiday
    assert shift_trading_days("2024-06-03", -5) == pd.Timestamp("2024-05-24")
    assert shift_trading_days("2024-06-08", 1) == pd.Timestamp("2024-06-10")
    assert latest_trading_day("2024-06-04 01:30") == pd.Timestamp("2024-06-03")
    assert latest_trading_day("2024-05-28 12:00") == pd.Timestamp("2024-05-24")


def _long(days, tickers, value=0.01):
    return pd.DataFrame([(pd.Timestamp(d), t, value) for d in days for t in tickers], columns=["date", "ticker", "ret"])


def test_return_rules_catch_bad_rows():
    good = _long(["2024-06-03"], ["A", "B", "C"])
    assert all(not p for p in check_returns(good, min_names=3).values())
    bad = pd.concat([good, good.iloc[[0]]], ignore_index=True)
    bad.loc[1, "ret"] = float("inf")
    bad.loc[2, "ret"] = 3.0
    problems = check_returns(bad, min_names=4)
    assert "non-finite" in problems["finite_bounded"][0] and "outside" in problems["finite_bounded"][1]
    assert "A on 2024-06-03" in problems["unique_date_ticker"][0]
    assert "fewer than 4 names" in problems["enough_names"][0]


def test_window_panel_reports_missing_days_and_drops_gappy_names():
    days = trading_days("2024-05-01", "2024-06-03")
    long = _long(days, ["A", "B"])
    long = long[~((long["ticker"] == "B") & (long["date"] == days[-3]))]
    wide, problems = window_panel(long, days[-1], 10)
    assert problems == [] and list(wide.columns) == ["A"] and len(wide) == 10
    _, problems = window_panel(long[long["date"] != days[-2]], days[-1], 10)
    assert "holds 9 of 10" in problems[0]


def test_horse_race_summary_pairs_estimators():
    rows = []
    for i, d in enumerate(trading_days("2024-01-02", "2024-06-28")):
        for name, vol in (("ledoit_wolf", 0.11), ("pca", 0.10), ("oracle", 0.09)):
            rows.append((d, name, vol + 0.002 * ((i * 7) % 5)))
    cards = pd.DataFrame(rows, columns=["date", "estimator", "realised_vol"])
    summary = summarise_scorecards(cards, horizon=5).set_index("estimator")
    assert list(summary.index) == ["oracle", "pca", "ledoit_wolf"]
    assert summary.loc["pca", "diff_vs_ledoit_wolf"] == pytest.approx(-0.01)
    assert summary.loc["oracle", "gap_to_oracle"] == 0.0
    assert summary.loc["ledoit_wolf", "gap_to_oracle"] == pytest.approx(0.02, abs=1e-3)
