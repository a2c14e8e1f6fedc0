"""Small helpers shared by the asset modules."""

import pandas as pd
from dagster import AssetCheckResult, AssetDep, MetadataValue

from vae_pipeline.core.calendar import is_trading_day

# Every asset that touches the DuckDB file runs in this pool; dagster.yaml limits it to
# one step at a time, because DuckDB locks the whole file per process.
DUCKDB_POOL = "duckdb"
PARTITION_COLUMN = {"partition_expr": "date"}


def window_deps(mapping, *names: str) -> list[AssetDep]:
    """The trailing windows an asset reads through ``WindowStore`` (not as Dagster inputs, see
    ``vae_pipeline.pipeline.window_store``), declared with their partition mapping for the lineage.

    The model, factor and risk assets read the returns window of ``standardised_panel`` (its
    admitted names over [d-W+1, d]: "the z-panel is the window through the scaler"), so they
    depend on ``standardised_panel`` and reach ``raw_returns`` through it, as in DESIGN.md's
    graph; only ``standardised_panel`` and ``anomaly_report`` declare the ``raw_returns`` window."""
    return [AssetDep(name, partition_mapping=mapping) for name in names]


def partition_day(context) -> pd.Timestamp:
    """The partition's day (partition d = as of the close of day d)."""
    return pd.Timestamp(context.partition_key)


def non_trading_day_results(context) -> list[AssetCheckResult] | None:
    """None on a trading day; on an exchange holiday the (vacuously passed) check results to
    yield instead of an output: nothing to refit, nothing stored, downstream skipped."""
    day = partition_day(context)
    if is_trading_day(day):
        return None
    context.log.info(f"{day:%Y-%m-%d} is not a trading day: nothing to compute, nothing stored")
    return [
        AssetCheckResult(
            check_name=spec.name, passed=True, metadata={"skipped": "not a trading day"}
        )
        for spec in context.assets_def.check_specs
    ]


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".4f") -> MetadataValue:
    """A frame as a markdown table for the Dagster UI."""
    return MetadataValue.md(frame.to_markdown(index=False, floatfmt=floatfmt))


def with_date(frame: pd.DataFrame, day: pd.Timestamp, columns: list[str]) -> pd.DataFrame:
    """Prepend the partition column and fix the column order (DuckDB inserts by position)."""
    out = frame.copy()
    out.insert(0, "date", pd.Timestamp(day))
    return out[["date", *columns]]
