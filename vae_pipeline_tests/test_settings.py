"""Configuration from the environment, the trading calendar, and the data-quality rules."""

import os
import subprocess
import sys
from pathlib import Path

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
    assert (s.evaluation.window, s.evaluation.horizon, s.model.latent_dim, s.data.source) == (
        504,
        21,
        4,
        "synthetic",
    )
    s = PipelineSettings.from_env({"VAE_PIPELINE_WINDOW": "60", "VAE_PIPELINE_LATENT": "3"})
    assert (s.evaluation.window, s.model.latent_dim) == (60, 3)


@pytest.mark.parametrize(
    "env, message",
    [
        ({"VAE_PIPELINE_BETA": "-1"}, "VAE_PIPELINE_BETA"),
        ({"VAE_PIPELINE_EPOCHS": "0"}, "VAE_PIPELINE_EPOCHS"),
        ({"VAE_PIPELINE_LATENT": "0"}, "VAE_PIPELINE_LATENT"),
        ({"VAE_PIPELINE_LATENT": "60"}, "must be below VAE_PIPELINE_N_NAMES"),
        ({"VAE_PIPELINE_SOURCE": "bloomberg"}, "VAE_PIPELINE_SOURCE"),
        ({"VAE_PIPELINE_START": "yesterday-ish"}, "is not a date"),
        ({"VAE_PIPELINE_WINDOW": "abc"}, "VAE_PIPELINE_WINDOW"),
    ],
)
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
    return pd.DataFrame(
        [(pd.Timestamp(d), t, value) for d in days for t in tickers],
        columns=["date", "ticker", "ret"],
    )


def test_return_rules_catch_bad_rows():
    good = _long(["2024-06-03"], ["A", "B", "C"])
    assert all(not p for p in check_returns(good, min_names=3).values())
    bad = pd.concat([good, good.iloc[[0]]], ignore_index=True)
    bad.loc[1, "ret"] = float("inf")
    bad.loc[2, "ret"] = 3.0
    problems = check_returns(bad, min_names=4)
    assert (
        "non-finite" in problems["finite_bounded"][0] and "outside" in problems["finite_bounded"][1]
    )
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


# -- one settings object: .env, groups, the shared training resource ----------------------
def test_every_variable_is_documented_in_env_example():
    from vae_pipeline.settings import ENV_NAMES

    text = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    assert [v for v in ENV_NAMES.values() if v not in text] == []


def test_env_file_is_read_and_the_environment_wins(tmp_path, monkeypatch):
    env = tmp_path / ".env"
    env.write_text("VAE_PIPELINE_BETA=2.5\nVAE_PIPELINE_WINDOW=80\nVAE_PIPELINE_IO=parquet\n")
    monkeypatch.setenv("VAE_PIPELINE_ENV_FILE", str(env))
    s = PipelineSettings.from_env()
    assert (s.model.beta, s.evaluation.window, s.storage.io) == (2.5, 80, "parquet")
    monkeypatch.setenv("VAE_PIPELINE_BETA", "0.5")
    assert PipelineSettings.from_env().model.beta == 0.5
    assert PipelineSettings.from_env(beta=3.0).model.beta == 3.0  # keyword arguments win


def test_keyword_names_route_into_groups_and_with_values_revalidates():
    s = PipelineSettings(window=60, epochs=30, db_path="x.duckdb", executor="multiprocess")
    assert (s.evaluation.window, s.model.epochs, s.runtime.executor) == (60, 30, "multiprocess")
    assert str(s.storage.db_path) == "x.duckdb"
    t = s.with_values(epochs=5, seed=7)
    assert (t.model.epochs, t.seed, t.evaluation.window) == (5, 7, 60)
    with pytest.raises(ValueError):
        s.with_values(epochs=0)


def test_bad_epochs_in_env_file_stops_vae_run_with_the_variable(tmp_path):
    (tmp_path / ".env").write_text("VAE_PIPELINE_EPOCHS=abc\n")
    env = {k: v for k, v in os.environ.items() if k != "VAE_PIPELINE_ENV_FILE"}
    env["VAE_PIPELINE_DB"] = str(tmp_path / "never.duckdb")
    vae = Path(sys.executable).with_name("vae")
    out = subprocess.run([str(vae), "run"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "VAE_PIPELINE_EPOCHS" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "never.duckdb").exists()


def test_training_is_one_resource_edited_once_and_w_h_are_not_run_config(tmp_path):
    from dagster import AssetKey, DagsterInstance, DagsterInvalidConfigError

    from vae_pipeline.pipeline.definitions import build_definitions
    from vae_pipeline.pipeline.runner import HISTORY_ASSETS, RANGE_END_TAG, RANGE_START_TAG
    from vae_pipeline_tests.conftest import tiny_settings

    settings = tiny_settings(tmp_path / "one.duckdb", epochs=5)
    defs = build_definitions(settings)
    job, instance = defs.resolve_implicit_global_asset_job_def(), DagsterInstance.ephemeral()
    tags = {RANGE_START_TAG: settings.data.start, RANGE_END_TAG: "2024-06-03"}
    history = [AssetKey(n) for n in HISTORY_ASSETS]
    assert job.execute_in_process(instance=instance, asset_selection=history, tags=tags).success
    models = [AssetKey(n) for n in ("standardised_panel", "trained_vae", "trained_cvae")]
    # W and H fix the partition mappings: no run config may move them (issue 11, defect 2)
    for field in ("horizon", "window"):
        with pytest.raises(DagsterInvalidConfigError, match=field):
            job.execute_in_process(
                instance=instance, asset_selection=models, partition_key="2024-06-03",
                run_config={"resources": {"training": {"config": {field: 99}}}},
            )  # fmt: skip
    # one edit of the shared training resource reaches both models of the run
    run = job.execute_in_process(
        instance=instance, asset_selection=models, partition_key="2024-06-03",
        run_config={"resources": {"training": {"config": {"beta": 0.25}}}},
    )  # fmt: skip
    assert run.success
    from vae_pipeline.store.connection import connect

    with connect(settings.storage.db_path, read_only=True) as con:
        configs = con.execute(
            "select model, train_config from main.trained_vae union all "
            "select model, train_config from main.trained_cvae"
        ).fetchall()
    assert len(configs) == 2 and all('"beta": 0.25' in c for _, c in configs), configs
