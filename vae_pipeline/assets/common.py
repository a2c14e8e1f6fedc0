"""Small helpers shared by the asset modules."""


import pandas as pd
from dagster import MetadataValue

from vae_pipeline.core.calendar import is_trading_day

# Every asset that touches the DuckDB file runs in this pool; dagster.yaml limits it to
# one step at a time, because DuckDB locks the whole file per process.
DUCKDB_POOL = "duckdb"
PARTITION_COLUMN = {"partition_expr": "date"}


def partition_day(context) -> pd.Timestamp:
    """The partition's day (partition d = as of the close of day d)."""
    return pd.Timestamp(context.partition_key)


def skip_non_trading_day(context) -> bool:
    """True (and logged) when the partition is an exchange holiday: nothing to refit."""
    day = partition_day(context)
    if is_trading_day(day):
        return False
    context.log.info(f"{day:%Y-%m-%d} is not a trading day: nothing to compute, nothing stored")
    return True


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".4f") -> MetadataValue:
    """A frame as a markdown table for the Dagster UI."""
    return MetadataValue.md(frame.to_markdown(index=False, floatfmt=floatfmt))


def with_date(frame: pd.DataFrame, day: pd.Timestamp, columns: list[str]) -> pd.DataFrame:
    """Prepend the partition column and fix the column order (DuckDB inserts by position)."""
    out = frame.copy()
    out.insert(0, "date", pd.Timestamp(day))
    return out[["date", *columns]]
