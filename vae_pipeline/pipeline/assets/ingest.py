"""Ingest: the daily cross-section of returns and the market observables."""

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, BackfillPolicy, asset

from vae_pipeline.core.calendar import trading_days
from vae_pipeline.core.validation import check_returns
from vae_pipeline.pipeline.assets.common import (
    DUCKDB_POOL,
    OWNERS,
    PARTITION_COLUMN,
    catalog_tags,
    storage_kind,
)
from vae_pipeline.pipeline.checks import gate, gate_specs
from vae_pipeline.pipeline.resources import DataSourceResource
from vae_pipeline.sources.base import (
    OBSERVABLE_COLUMNS,
    RETURNS_COLUMNS,
    first_date,
    last_date,
)


def partition_span(context: AssetExecutionContext) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last calendar day of the run's partitions (one day, or a backfill range)."""
    window = context.partition_time_window
    start = pd.Timestamp(window.start).tz_localize(None)
    end = pd.Timestamp(window.end).tz_localize(None) - pd.Timedelta(days=1)
    return start, end


def _outages(
    long: pd.DataFrame, start, end, first=None, last=None, what: str = "returns"
) -> list[str]:
    """Trading days in the span with an empty cross-section (a holiday is not an outage).

    Days before the source's first day with a return are before its history, not outages;
    days after its last are outages whose message says where the data ends."""
    days = trading_days(max(start, first) if first is not None else start, end)
    missing = days.difference(pd.DatetimeIndex(long["date"].unique()))
    ends = f" (the source's data ends on {last:%Y-%m-%d})" if last is not None else ""
    found = [
        f"no {what} on trading day {d:%Y-%m-%d}{ends if last is not None and d > last else ''}"
        for d in missing[:5]
    ]
    return found + ([f"... and {len(missing) - 5} more"] if len(missing) > 5 else [])


def _report(source, method: str, *args) -> dict:
    """A source's optional metadata (``returns_report`` / ``observables_report``), or {}."""
    found = getattr(source, method, None)
    return found(*args) if callable(found) else {}


def build(partitions, settings) -> list:
    storage = storage_kind(settings)

    @asset(
        partitions_def=partitions,
        group_name="ingest",
        metadata=PARTITION_COLUMN,
        backfill_policy=BackfillPolicy.single_run(),
        check_specs=gate_specs(
            "raw_returns",
            ["finite_bounded", "unique_date_ticker", "enough_names"],
            partitions=partitions,
        ),
        output_required=False,
        pool=DUCKDB_POOL,
        kinds={storage, "pandas"},
        owners=OWNERS,
        tags=catalog_tags("raw"),
    )
    def raw_returns(context: AssetExecutionContext, source: DataSourceResource):
        """Daily simple returns of every name (long: date, ticker, ret), one partition per day.

        A history backfill runs as a single run. Real data arrives cleaned by the source
        (``core.cleaning``: glitches, stale runs, coverage, winsorisation; counts in the
        metadata). Refused before storage: non-finite or absurd returns, duplicate (date,
        ticker), thin cross-sections, and an empty cross-section on a trading day (an exchange
        holiday, or a day before the source's history begins, stores nothing, by design).
        """
        start, end = partition_span(context)
        data = source.get()
        long = data.returns(start, end)
        long = long[(long["date"] >= start) & (long["date"] <= end)][RETURNS_COLUMNS]
        first, last = first_date(data), last_date(data)
        problems = check_returns(long, source.min_names)
        problems["enough_names"] = problems["enough_names"] + _outages(
            long, start, end, first, last
        )
        metadata = {
            "rows": len(long),
            "days": int(long["date"].nunique()),
            "names": int(long["ticker"].nunique()),
            "source": source.source,
            **_report(data, "returns_report", start, end),
        }
        if first is not None and start < first:
            metadata["before_history"] = f"the source's first return is on {first:%Y-%m-%d}"
        yield from gate(context, long.reset_index(drop=True), problems, metadata)

    @asset(
        partitions_def=partitions,
        group_name="ingest",
        metadata=PARTITION_COLUMN,
        backfill_policy=BackfillPolicy.single_run(),
        check_specs=gate_specs("market_observables", ["observables_valid"], partitions=partitions),
        output_required=False,
        pool=DUCKDB_POOL,
        kinds={storage, "pandas"},
        owners=OWNERS,
        tags=catalog_tags("raw"),
    )
    def market_observables(context: AssetExecutionContext, source: DataSourceResource):
        """The daily market observables: market return, a volatility index (VIX-like), a
        macro slope (term spread) and the regime label (0 expansion, 1 contraction, from the
        trailing market trend), one partition per day."""
        start, end = partition_span(context)
        data = source.get()
        obs = data.observables(start, end)
        obs = obs[(obs["date"] >= start) & (obs["date"] <= end)][OBSERVABLE_COLUMNS]
        values = obs[["market", "volatility", "macro_slope"]].to_numpy(dtype=float)
        problems = []
        if not np.isfinite(values).all():
            problems.append(f"{int((~np.isfinite(values)).sum())} non-finite observables")
        if not obs["regime"].isin([0, 1]).all():
            problems.append("regime labels outside {0, 1}")
        # A trading day without observables stores nothing (as raw_returns refuses it), so
        # the partition never shows as materialised with zero rows.
        problems += _outages(obs, start, end, first_date(data), last_date(data), "observables")
        metadata = {
            "rows": len(obs),
            "contraction_share": float(obs["regime"].mean()) if len(obs) else 0.0,
            **_report(data, "observables_report"),
        }
        yield from gate(
            context, obs.reset_index(drop=True), {"observables_valid": problems}, metadata
        )

    return [raw_returns, market_observables]
