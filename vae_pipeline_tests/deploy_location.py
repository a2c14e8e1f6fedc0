"""The code location of the PostgreSQL / dagster-daemon CI test (``.ci/postgres.sh``).

The pipeline's own definitions (settings from ``VAE_PIPELINE_*``) plus a test-only schedule
that ticks every minute, RUNNING by default, and asks for one small run: the ingest of the
partition in ``VAE_PIPELINE_TICK_PARTITION``. (The real ``daily_refit_schedule`` ticks at
01:30 UTC; its evaluation is tested in pipeline/test_schedules.py.)
"""

import os

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    Definitions,
    RunRequest,
    define_asset_job,
    schedule,
)

from vae_pipeline.pipeline.definitions import build_definitions

TICK_SCHEDULE = "ci_every_minute"
TICK_JOB = "ci_ingest"


def _definitions() -> Definitions:
    pipeline = build_definitions()
    # partitioned like the assets it selects (Dagster infers it: partitions_def is deprecated)
    tick_job = define_asset_job(
        TICK_JOB, selection=AssetSelection.assets("raw_returns", "market_observables")
    )

    @schedule(
        job=tick_job,
        cron_schedule="* * * * *",
        default_status=DefaultScheduleStatus.RUNNING,
        name=TICK_SCHEDULE,
    )
    def ci_every_minute(context):
        key = os.environ["VAE_PIPELINE_TICK_PARTITION"]
        return RunRequest(run_key=f"tick-{key}", partition_key=key)

    return Definitions.merge(pipeline, Definitions(jobs=[tick_job], schedules=[ci_every_minute]))


defs = _definitions()
