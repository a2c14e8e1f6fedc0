"""The one place that wires everything into ``defs`` (the Dagster code location)."""

from __future__ import annotations

import warnings

from dagster import BetaWarning, Definitions

from vae_pipeline.pipeline.assets import build_assets
from vae_pipeline.pipeline.executors import executor_for
from vae_pipeline.pipeline.io_managers import io_managers_for
from vae_pipeline.pipeline.partitions import trading_day_partitions
from vae_pipeline.pipeline.resources import DataSourceResource, TrainingResource
from vae_pipeline.pipeline.schedules import build_schedule, daily_refit_job
from vae_pipeline.pipeline.window_store import window_store_for
from vae_pipeline.settings import PipelineSettings


def build_definitions(
    settings: PipelineSettings | None = None, source: DataSourceResource | None = None
) -> Definitions:
    """Definitions for ``settings`` (default: from the ``VAE_PIPELINE_*`` environment);
    ``source`` replaces the data-source resource (tests inject faulty data through it)."""
    settings = settings or PipelineSettings.from_env()
    partitions = trading_day_partitions(settings.data.start)
    with warnings.catch_warnings():
        # The history assets' BackfillPolicy.single_run (one run per backfill) is a beta
        # parameter of @asset; this warning would print on every load of the code location.
        warnings.filterwarnings(
            "ignore",
            message="Parameter `backfill_policy` .* is currently in beta",
            category=BetaWarning,
        )
        assets = build_assets(partitions, settings)
    executor = executor_for(settings.runtime)
    job = daily_refit_job(partitions, executor)
    settings.storage.db_path.parent.mkdir(parents=True, exist_ok=True)
    return Definitions(
        assets=assets,
        jobs=[job],
        schedules=[build_schedule(job, settings.runtime.schedule)],
        resources={
            # tables and models in the DuckDB file, or in Parquet files several workers share
            # (VAE_PIPELINE_IO=parquet): vae_pipeline.store
            **io_managers_for(settings),
            "source": source or DataSourceResource.from_settings(settings),
            # the training settings every model asset of a run shares (one launchpad edit)
            "training": TrainingResource.from_settings(settings),
            # the trailing windows the model assets read (same storage as the IO manager)
            "store": window_store_for(settings),
        },
        # DuckDB locks the file per process: steps run in the run's own process by default.
        executor=executor,
    )


defs = build_definitions()
