"""Filling one day the way a Dagster user does, with history missing upstream: a gate names the
asset, the missing range and the command that fills it, and nothing downstream is stored."""

import warnings

import numpy as np
import pandas as pd
from dagster import AssetKey, DagsterInstance

from vae_pipeline.core.calendar import shift_trading_days, trading_days
from vae_pipeline.pipeline.definitions import build_definitions
from vae_pipeline.pipeline.runner import RANGE_END_TAG, RANGE_START_TAG
from vae_pipeline.settings import PipelineSettings
from vae_pipeline.store import Span, store_for
from vae_pipeline_tests.conftest import daily_keys

START, DAY = "2024-01-02", "2024-05-01"


def _prices(tmp_path) -> str:
    days = trading_days("2023-12-29", DAY)
    rng = np.random.default_rng(42)
    market = rng.normal(0.0004, 0.01, (len(days), 1))
    steps = 1 + market + rng.normal(0.0, 0.01, (len(days), 12))
    wide = pd.DataFrame(100 * np.cumprod(steps, axis=0), columns=[f"S{j}" for j in range(12)])
    wide.insert(0, "date", days.strftime("%Y-%m-%d"))
    path = tmp_path / "prices.csv"
    wide.to_csv(path, index=False)
    return str(path)


def test_a_day_filled_without_its_observables_history_is_refused_with_the_fill_command(tmp_path):
    settings = PipelineSettings(
        source="csv", prices_path=_prices(tmp_path), start=START, window=40, horizon=5,
        epochs=5, min_names=5, db_path=tmp_path / "user.duckdb",
    )  # fmt: skip
    defs = build_definitions(settings)
    job, instance = defs.resolve_implicit_global_asset_job_def(), DagsterInstance.ephemeral()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # 1. `--select raw_returns --partition-range START...DAY`: only the returns history
        tags = {RANGE_START_TAG: START, RANGE_END_TAG: DAY}
        assert job.execute_in_process(
            instance=instance, asset_selection=[AssetKey("raw_returns")], tags=tags
        ).success
        # 2. `--select '*' --partition DAY`
        result = job.execute_in_process(
            instance=instance, partition_key=DAY, asset_selection=daily_keys(defs),
            raise_on_error=False,
        )  # fmt: skip
    assert not result.success
    # every failed step failed on a gate (a blocking check), none on a ValueError / KeyError
    errors = [
        e.event_specific_data.error.message
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
    ]
    assert errors and all("DagsterAssetCheckFailedError" in m for m in errors), errors
    failed = {
        (c.asset_key.to_user_string(), c.check_name): str(c.metadata["problems"].value)
        for c in result.get_asset_check_evaluations()
        if not c.passed
    }
    # the 39 window days before DAY (DAY's own observables were just stored by `*`)
    first_gap = f"{shift_trading_days(DAY, -39):%Y-%m-%d}"
    assert (
        "holds no rows for 39 of the 40 trading days"
        in failed[("trained_cvae", "history_complete")]
    )
    message = failed[("trained_cvae", "history_complete")]
    assert "market_observables holds no rows for" in message
    assert f"({first_gap} .. " in message
    assert (
        "dagster asset materialize -m vae_pipeline.pipeline.definitions "
        f"--select 'market_observables' --partition-range {first_gap}..."
    ) in message
    assert max(len(line) for line in message.splitlines()) < 400  # a few clear lines
    store = store_for(settings, read_only=True)
    for table in ("trained_cvae", "covariance_estimates", "minvar_scorecard", "anomaly_report"):
        assert store.read(table, Span.days(DAY, DAY)).empty, f"{table} stored rows for {DAY}"
