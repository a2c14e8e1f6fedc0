"""Features: the standardised training window."""

import pandas as pd
from dagster import AssetExecutionContext, BackfillPolicy, asset

from vae_pipeline.core.panel import window_panel
from vae_pipeline.core.standardise import SCALER_COLUMNS, scaler_frame
from vae_pipeline.pipeline.assets.common import (
    DUCKDB_POOL,
    OWNERS,
    PARTITION_COLUMN,
    catalog_tags,
    holiday_results,
    missing_history,
    run_days,
    storage_kind,
    window_deps,
    with_date,
)
from vae_pipeline.pipeline.checks import DayGate, gate_days, gate_specs
from vae_pipeline.pipeline.partitions import training_window
from vae_pipeline.pipeline.resources import DataSourceResource, TrainingResource
from vae_pipeline.pipeline.window_store import WindowStore

CHECKS = ["window_complete", "enough_names", "standardised_moments"]


def build(partitions, settings) -> list:
    window_days = settings.evaluation.window

    @asset(
        partitions_def=partitions,
        group_name="features",
        metadata=PARTITION_COLUMN,
        deps=window_deps(training_window(settings), "raw_returns"),
        check_specs=gate_specs("standardised_panel", CHECKS, partitions=partitions),
        backfill_policy=BackfillPolicy.single_run(),
        output_required=False,
        pool=DUCKDB_POOL,
        kinds={storage_kind(settings), "pandas"},
        owners=OWNERS,
        tags=catalog_tags("features"),
    )
    def standardised_panel(
        context: AssetExecutionContext,
        training: TrainingResource,
        store: WindowStore,
        source: DataSourceResource,
    ):
        """The training window [d-W+1, d] z-scored per stock: one row per name with its scaler.

        Stored as the scaler (mean, scale) and the z-scores' own moments, O(N) per day; the
        z-panel itself is the raw window transformed by this scaler. Refused when the window
        is short (near the start of history, or over missing days) or too few names remain.
        """
        if not (days := run_days(context)):
            yield from holiday_results(context)
            return
        view, first = store.over(days), source.first_day()
        needed = max(settings.data.min_names, training.latent_dim + 1)
        outcomes = {day: _one_day(view, day, first, needed, training.latent_dim) for day in days}
        yield from gate_days(context, outcomes, pd.concat)

    def _one_day(view, day, first, needed, latent_dim) -> DayGate:
        """The gate and scaler of one day (a one-day run and a ranged run alike)."""
        wide, window_problems = window_panel(view.returns(day, window_days), day, window_days)
        problems = {
            "window_complete": window_problems
            + missing_history(view, day, {"raw_returns": window_days}, first),
            "enough_names": [
                f"{wide.shape[1]} names with a full window; need at least {needed} "
                f"(latent_dim={latent_dim})"
            ]
            if wide.shape[1] < needed
            else [],
            "standardised_moments": [],
        }
        scaler = None
        if not problems["window_complete"] and wide.shape[1] > 0:
            scaler, problems["standardised_moments"] = scaler_frame(wide)
        metadata = {
            "names": int(wide.shape[1]),
            "days": int(len(wide)),
            "first_day": str(wide.index.min().date()) if len(wide) else "none",
        }
        frame = with_date(scaler, day, SCALER_COLUMNS) if scaler is not None else None
        return DayGate(frame, problems, metadata)

    return [standardised_panel]
