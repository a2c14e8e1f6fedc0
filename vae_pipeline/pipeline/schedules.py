"""The daily rolling refit: one job over the whole graph and the schedule that runs it."""

import pandas as pd
from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    multi_or_in_process_executor,
    schedule,
)

from vae_pipeline.core.calendar import is_trading_day
from vae_pipeline.pipeline.assets.report import ON_DEMAND

DAILY_REFIT_JOB = "daily_refit"
# 01:30 UTC Tuesday-Saturday: after the US close of Monday-Friday, once the weekday
# partition of that close is complete.
REFIT_CRON = "30 1 * * 2-6"


def daily_refit_job(partitions, executor=None):  # partitions: inferred from the assets
    """Refit and score the whole graph for one trading day (the unpartitioned roll-ups too).

    In-process by default (DuckDB locks the file per process); a backfill may switch to
    ``{"execution": {"config": {"multiprocess": {}}}}``: the ``duckdb`` pool in dagster.yaml
    then keeps the file's writers to one step at a time. Another ``executor`` (k8s, celery,
    dask: ``vae_pipeline.pipeline.executors``) replaces both.
    """
    chosen = executor is not None and executor.name not in (
        "in_process",
        "multi_or_in_process_executor",
    )
    return define_asset_job(
        DAILY_REFIT_JOB,
        selection=AssetSelection.all() - AssetSelection.assets(*ON_DEMAND),
        executor_def=executor if chosen else multi_or_in_process_executor,
        config=None if chosen else {"execution": {"config": {"in_process": {}}}},
        description="Refit the VAE / CVAE on the trailing window and score every estimator for one day.",
    )


def last_complete_weekday(tick: pd.Timestamp) -> pd.Timestamp:
    """The weekday before the tick's date (the last complete weekday partition)."""
    return (pd.Timestamp(tick).tz_localize(None).normalize() - pd.offsets.BDay(1)).normalize()


def build_schedule(job, status: str = "stopped"):
    """The daily schedule. STOPPED by default: a new user turns it on in the UI (or sets
    ``VAE_PIPELINE_SCHEDULE=running``) once the history it needs is backfilled."""
    status = DefaultScheduleStatus.RUNNING if status == "running" else DefaultScheduleStatus.STOPPED

    @schedule(
        job=job,
        cron_schedule=REFIT_CRON,
        execution_timezone="UTC",
        default_status=status,
        name="daily_refit_schedule",
    )
    def daily_refit_schedule(context: ScheduleEvaluationContext):
        """Targets the last complete trading day; skips exchange holidays."""
        day = last_complete_weekday(pd.Timestamp(context.scheduled_execution_time))
        if not is_trading_day(day):
            return SkipReason(f"{day:%Y-%m-%d} is an exchange holiday: nothing to refit")
        key = f"{day:%Y-%m-%d}"
        return RunRequest(run_key=key, partition_key=key)

    return daily_refit_schedule
