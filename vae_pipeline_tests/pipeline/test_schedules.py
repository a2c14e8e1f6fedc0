"""The daily refit schedule and a multiprocess backfill against one DuckDB file."""

import datetime as dt
import shutil
from pathlib import Path

import duckdb
import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    RunRequest,
    build_schedule_context,
    execute_job,
    reconstructable,
)

from vae_pipeline.pipeline.definitions import build_definitions
from vae_pipeline_tests.conftest import tiny_settings
from vae_pipeline_tests.refit_job import daily_refit_job

REPO = Path(__file__).resolve().parents[2]


def _tick(when: dt.datetime):
    defs = build_definitions(tiny_settings(Path("/tmp/unused.duckdb")))
    schedule = defs.resolve_schedule_def("daily_refit_schedule")
    context = build_schedule_context(
        scheduled_execution_time=when, repository_def=defs.get_repository_def()
    )
    return schedule.evaluate_tick(context)


def test_tick_targets_the_last_complete_trading_day():
    result = _tick(dt.datetime(2024, 6, 4, 1, 30, tzinfo=dt.timezone.utc))  # Tuesday morning UTC
    [request] = result.run_requests
    assert isinstance(request, RunRequest) and request.partition_key == "2024-06-03"
    saturday = _tick(dt.datetime(2024, 6, 8, 1, 30, tzinfo=dt.timezone.utc))
    assert saturday.run_requests[0].partition_key == "2024-06-07"  # Friday's close


def test_tick_skips_exchange_holidays():
    result = _tick(dt.datetime(2024, 5, 28, 1, 30, tzinfo=dt.timezone.utc))  # after Memorial Day
    assert not result.run_requests
    assert "holiday" in result.skip_message


def test_schedule_starts_stopped_by_default(monkeypatch):
    monkeypatch.delenv("VAE_PIPELINE_SCHEDULE", raising=False)
    defs = build_definitions(tiny_settings(Path("/tmp/unused.duckdb")))
    from dagster import DefaultScheduleStatus

    assert (
        defs.resolve_schedule_def("daily_refit_schedule").default_status
        == DefaultScheduleStatus.STOPPED
    )


# slow (~40-75 s on 2 cores): run by .ci/run, outside the 10-minute `make test`
@pytest.mark.slow
def test_backfill_of_three_partitions_with_multiprocess_executor(tmp_path, monkeypatch):
    """raw_returns and market_observables, two writers of the same DuckDB file with no
    dependency between them, run as parallel processes; the `duckdb` pool serialises them.
    (Every step process imports torch and dagster, so the selection is kept to these two.)"""
    db = tmp_path / "mp.duckdb"
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    settings = tiny_settings(db)
    for key, value in {
        "DB": str(db),
        "START": settings.data.start,
        "N_NAMES": "20",
        "WINDOW": "60",
        "HORIZON": "5",
        "EPOCHS": "30",
        "MIN_NAMES": "5",
    }.items():
        monkeypatch.setenv(f"VAE_PIPELINE_{key}", value)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    selection = [AssetKey("raw_returns"), AssetKey("market_observables")]
    days = ["2024-06-05", "2024-06-06", "2024-06-07"]
    with DagsterInstance.get() as instance:
        for day in days:
            result = execute_job(
                reconstructable(daily_refit_job),
                instance=instance,
                asset_selection=selection,
                run_config={"execution": {"config": {"multiprocess": {"max_concurrent": 2}}}},
                tags={"dagster/partition": day},
            )
            assert result.success, day
            assert {e.step_key for e in result.get_step_success_events()} == {
                k.path[0] for k in selection
            }
            logs = instance.all_logs(result.run_id)
            assert not any("Could not set lock" in (e.message or "") for e in logs)
            assert any("blocked by limit for pool duckdb" in (e.message or "") for e in logs)
    with duckdb.connect(str(db), read_only=True) as con:
        dates = {
            r[0].strftime("%Y-%m-%d")
            for r in con.execute("select distinct date from main.market_observables").fetchall()
        }
    assert dates == set(days)
