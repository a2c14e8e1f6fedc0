"""Ground truth of the synthetic panel, an asset of its own so the lineage shows where the
oracle covariance, the true-factor recovery and the planted anomalies come from.

Only a synthetic source knows its truth, so the asset (and every dependency on it) exists only
when ``VAE_PIPELINE_SOURCE=synthetic``; on real data the oracle rows and recovery R^2 are absent.
"""

import numpy as np
import pandas as pd
from dagster import AssetDep, AssetExecutionContext, BackfillPolicy, asset

from vae_pipeline.core.truth import TRUTH_COLUMNS
from vae_pipeline.pipeline.assets.common import (
    DUCKDB_POOL,
    OWNERS,
    PARTITION_COLUMN,
    catalog_tags,
    holiday_results,
    run_days,
    storage_kind,
    with_date,
)
from vae_pipeline.pipeline.checks import DayGate, gate_days, gate_specs
from vae_pipeline.pipeline.resources import DataSourceResource

NAME = "ground_truth"


def has_truth(settings) -> bool:
    return settings.data.source == "synthetic"


def truth_deps(settings) -> list[AssetDep]:
    """The dependency on the same day's ``ground_truth``, where it exists."""
    return [AssetDep(NAME)] if has_truth(settings) else []


def build(partitions, settings) -> list:
    if not has_truth(settings):
        return []

    @asset(
        name=NAME,
        partitions_def=partitions,
        group_name="ingest",
        metadata=PARTITION_COLUMN,
        check_specs=gate_specs(NAME, ["truth_consistent"], partitions=partitions),
        backfill_policy=BackfillPolicy.single_run(),
        output_required=False,
        pool=DUCKDB_POOL,
        kinds={storage_kind(settings), "pandas"},
        owners=OWNERS,
        tags=catalog_tags("raw"),
    )
    def ground_truth(context: AssetExecutionContext, source: DataSourceResource):
        """The synthetic panel's truth as of the close of day d: true loadings, factor and
        idiosyncratic variances (their product is the oracle covariance of day d+1), the
        planted anomaly flags and the true factor returns of the window [d-W+1, d].
        O(N K + W K) rows, long."""
        if not (days := run_days(context)):
            yield from holiday_results(context)
            return
        data = source.get()
        outcomes = {day: _one_day(data, day) for day in days}
        yield from gate_days(context, outcomes, pd.concat)

    def _one_day(data, day) -> DayGate:
        truth = data.ground_truth(day, settings.evaluation.window)
        rows = truth.to_rows()
        problems = []
        if not np.isfinite(rows["value"].to_numpy()).all() or (truth.idio_var <= 0).any():
            problems.append("non-finite truth or a non-positive idiosyncratic variance")
        if not truth.idio_var.index.equals(truth.loadings.index):
            problems.append("loadings and idiosyncratic variances cover different names")
        metadata = {"names": len(truth.idio_var), "factors": len(truth.factor_var),
                    "window_days": len(truth.factor_returns),
                    "planted": int(truth.planted.sum())}  # fmt: skip
        frame = with_date(rows, day, TRUTH_COLUMNS)
        return DayGate(frame, {"truth_consistent": problems}, metadata)

    return [ground_truth]
