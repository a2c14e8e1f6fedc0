"""Ground truth of the synthetic panel, an asset of its own so the lineage shows where the
oracle covariance, the true-factor recovery and the planted anomalies come from.

Only a synthetic source knows its truth, so the asset (and every dependency on it) exists only
when ``VAE_PIPELINE_SOURCE=synthetic``; on real data the oracle rows and recovery R^2 are absent.
"""

import pandas as pd
from dagster import AssetDep, AssetExecutionContext, BackfillPolicy, asset

from vae_pipeline.core.calendar import trading_days
from vae_pipeline.core.truth import TRUTH_COLUMNS
from vae_pipeline.pipeline.assets.common import (
    DUCKDB_POOL,
    PARTITION_COLUMN,
    holiday_results,
    with_date,
)
from vae_pipeline.pipeline.assets.ingest import partition_span
from vae_pipeline.pipeline.checks import gate, gate_specs
from vae_pipeline.pipeline.resources import DataSourceResource

NAME = "ground_truth"


def has_truth(settings) -> bool:
    return settings.data.source == "synthetic"


def truth_deps(settings, mapping=None) -> list[AssetDep]:
    """The dependency on ``ground_truth`` (with ``mapping`` for a window), where it exists."""
    return [AssetDep(NAME, partition_mapping=mapping)] if has_truth(settings) else []


def build(partitions, settings) -> list:
    if not has_truth(settings):
        return []

    @asset(
        name=NAME,
        partitions_def=partitions,
        group_name="ingest",
        metadata=PARTITION_COLUMN,
        backfill_policy=BackfillPolicy.single_run(),
        check_specs=gate_specs(NAME, ["truth_consistent"]),
        output_required=False,
        pool=DUCKDB_POOL,
        kinds={"duckdb"},
    )
    def ground_truth(context: AssetExecutionContext, source: DataSourceResource):
        """The synthetic panel's truth as of the close of day d: true loadings, factor and
        idiosyncratic variances (their product is the oracle covariance of day d+1), the
        planted anomaly flags and the day's true factor returns. O(N K) rows, long."""
        source, rows, problems = source.get(), [], []
        first, last = partition_span(context)  # one day, or a history range
        for day in trading_days(first, last):
            truth = source.ground_truth(day, panel_end=last)
            if not truth.to_rows()["value"].notna().all() or (truth.idio_var <= 0).any():
                problems.append(f"{day:%Y-%m-%d}: non-finite truth or a non-positive variance")
            if set(truth.idio_var.index) != set(truth.loadings.index):
                problems.append(f"{day:%Y-%m-%d}: loadings and variances cover different names")
            rows.append(with_date(truth.to_rows(), day, TRUTH_COLUMNS))
        if not rows:  # an exchange holiday: nothing to store
            yield from holiday_results(context)
            return
        frame = pd.concat(rows, ignore_index=True)
        metadata = {"days": len(rows), "rows": len(frame)}
        yield from gate(context, frame, {"truth_consistent": problems}, metadata)

    return [ground_truth]
