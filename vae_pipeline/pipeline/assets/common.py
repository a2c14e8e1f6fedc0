"""What every partitioned asset opens with, written once: the run's trading days (one for a
one-day run, every trading day of the range for a ranged run; the vacuous results of an
exchange holiday when there are none), the history it needs (a gate naming what is missing and
the command that fills it), the per-day slices of a ranged input, and the fixed-column frame
it stores."""

from __future__ import annotations

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetDep,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
)

from vae_pipeline.core.calendar import is_trading_day, trading_days

# Every asset that touches the DuckDB file runs in this pool; dagster.yaml limits it to
# one step at a time, because DuckDB locks the whole file per process.
DUCKDB_POOL = "duckdb"
PARTITION_COLUMN = {"partition_expr": "date"}
DEFINITIONS_MODULE = "vae_pipeline.pipeline.definitions"
# The blocking check of every asset that reads stored history beyond its own inputs.
HISTORY_CHECK = "history_complete"
# Who answers for the assets, in the catalog's Owners column (a Dagster team owner).
OWNERS = ["team:quant-research"]


def storage_kind(settings) -> str:
    """The kind tag of where the tables live: ``duckdb`` (one file) or ``parquet`` (a root)."""
    return "parquet" if settings.storage.io == "parquet" else "duckdb"


def catalog_tags(layer: str, cadence: str = "daily") -> dict[str, str]:
    """The catalog's tags of an asset: its ``layer`` in the flow (raw, features, model,
    analytics, decision, evaluation, presentation) and its ``cadence`` (daily: one partition
    per trading day; rollup: over every partition; on-demand: never in the daily run)."""
    return {"layer": layer, "cadence": cadence}


def window_deps(mapping, *names: str) -> list[AssetDep]:
    """The trailing windows an asset reads through ``WindowStore`` (not as Dagster inputs, see
    ``vae_pipeline.pipeline.window_store``), declared with their partition mapping for the
    lineage and the backfill order."""
    return [AssetDep(name, partition_mapping=mapping) for name in names]


def trading_partition(context) -> pd.Timestamp | None:
    """The partition's day (partition d = as of the close of day d), or None on an exchange
    holiday (nothing to compute, nothing stored: see :func:`holiday_results`)."""
    day = pd.Timestamp(context.partition_key)
    if is_trading_day(day):
        return day
    context.log.info(f"{day:%Y-%m-%d} is not a trading day: nothing to compute, nothing stored")
    return None


def run_days(context) -> list[pd.Timestamp]:
    """The trading days of the run's partitions, in date order: the partition's day in a
    one-day run, every trading day of the range in a ranged (single-run backfill) run. Empty
    when they are all exchange holidays (see :func:`holiday_results`). The time window, not
    the key list: Dagster enumerates a range's keys one cron tick at a time."""
    window = context.partition_time_window
    first = pd.Timestamp(window.start).tz_localize(None)
    last = pd.Timestamp(window.end).tz_localize(None) - pd.Timedelta(days=1)
    days = list(trading_days(first, last))
    if not days:
        context.log.info(
            f"{first:%Y-%m-%d} is not a trading day: nothing to compute, nothing stored"
        )
    return days


def by_day(frame: pd.DataFrame | None, column: str = "date") -> dict[pd.Timestamp, pd.DataFrame]:
    """A ranged input's rows split by partition day (one split, not one filter per day)."""
    if frame is None or not len(frame):
        return {}
    dates = pd.to_datetime(frame[column])
    return {pd.Timestamp(d): rows for d, rows in frame.groupby(dates, sort=True)}


def by_key(models) -> dict[str, object]:
    """A model input as partition key -> ``TrainResult``: the model IO manager serves one
    result (or None) to a one-day run and a dict to a ranged one."""
    if models is None:
        return {}
    return models if isinstance(models, dict) else {"single": models}


def model_of(models: dict, day: pd.Timestamp):
    """The model of ``day`` in :func:`by_key`'s dict (a one-day run's single one), or None."""
    return models.get(f"{day:%Y-%m-%d}", models.get("single"))


def not_stored(asset: str, day: pd.Timestamp) -> str:
    """The problem of a day whose input holds nothing (in a ranged run: its gate failed)."""
    return (
        f"no {asset} stored for {day:%Y-%m-%d} (its own gate refused the day, or it was never "
        f"materialised): fill it with: {fill_command(asset, pd.DatetimeIndex([day]))}"
    )


def missing_input(day: pd.Timestamp, **inputs) -> str | None:
    """:func:`not_stored` for the first of ``inputs`` (asset name -> its frames by day) that
    holds nothing for ``day``; None when every input has the day."""
    absent = next((name for name, by_day in inputs.items() if day not in by_day), None)
    return None if absent is None else not_stored(absent, day)


def holiday_results(context) -> list[AssetCheckResult]:
    """The (vacuously passed) check results a holiday partition yields instead of an output."""
    return [
        AssetCheckResult(
            check_name=spec.name, passed=True, metadata={"skipped": "not a trading day"}
        )
        for spec in context.assets_def.check_specs
    ]


def fill_command(assets: str, days: pd.DatetimeIndex) -> str:
    """The ``dagster asset materialize`` command that stores ``assets`` on ``days``."""
    first, last = f"{days.min():%Y-%m-%d}", f"{days.max():%Y-%m-%d}"
    where = f"--partition {first}" if first == last else f"--partition-range {first}...{last}"
    return f"dagster asset materialize -m {DEFINITIONS_MODULE} --select '{assets}' {where}"


def missing_history(store, day: pd.Timestamp, needs: dict[str, int], start) -> list[str]:
    """One line per table of ``needs`` (table -> trading days up to ``day``) that lacks days
    on or after the first partition ``start``, naming the missing range and the command that
    fills it (empty when all is stored; days before ``start`` cannot be filled, and the
    window gates say so in their own words)."""
    problems = []
    for table, days in needs.items():
        missing = store.missing_days(table, day, days)
        missing = missing[missing >= pd.Timestamp(start)]
        if len(missing):
            problems.append(
                f"{table} holds no rows for {len(missing)} of the {days} trading days up to "
                f"{day:%Y-%m-%d} ({missing.min():%Y-%m-%d} .. {missing.max():%Y-%m-%d}); fill "
                f"them with: {fill_command(table, missing)}"
            )
    return problems


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".4f") -> MetadataValue:
    """A frame as a markdown table for the Dagster UI."""
    return MetadataValue.md(frame.to_markdown(index=False, floatfmt=floatfmt))


def table_metadata(frame: pd.DataFrame) -> MetadataValue:
    """A small frame as a Dagster table (sortable in the UI)."""
    kinds = {"f": "float", "i": "int", "b": "bool"}
    schema = TableSchema(
        columns=[TableColumn(str(c), kinds.get(frame[c].dtype.kind, "string")) for c in frame]
    )
    records = [
        TableRecord(
            {str(k): (v if not isinstance(v, float) or v == v else None) for k, v in row.items()}
        )
        for row in frame.to_dict(orient="records")
    ]
    return MetadataValue.table(records=records, schema=schema)


def with_date(frame: pd.DataFrame, day: pd.Timestamp, columns: list[str]) -> pd.DataFrame:
    """Prepend the partition column and fix the column order (tables are stored by position)."""
    out = frame.copy()
    out.insert(0, "date", pd.Timestamp(day))
    return out[["date", *columns]]
