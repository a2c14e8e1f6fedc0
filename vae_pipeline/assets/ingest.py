"""Ingest: the daily cross-section of returns and the market observables."""

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, BackfillPolicy, asset

from vae_pipeline.assets.common import DUCKDB_POOL, PARTITION_COLUMN
from vae_pipeline.checks import gate, gate_specs
from vae_pipeline.core.calendar import trading_days
from vae_pipeline.core.validation import check_returns
from vae_pipeline.resources import DataSourceResource
from vae_pipeline.sources.base import OBSERVABLE_COLUMNS, RETURNS_COLUMNS


def _span(context: AssetExecutionContext) -> tuple[pd.Timestamp, pd.Timestamp]:
    """First and last calendar day of the run's partitions (one day, or a backfill range)."""
    window = context.partition_time_window
    start = pd.Timestamp(window.start).tz_localize(None)
    end = pd.Timestamp(window.end).tz_localize(None) - pd.Timedelta(days=1)
    return start, end


def _outages(long: pd.DataFrame, start, end) -> list[str]:
    """Trading days in the span with an empty cross-section (a holiday is not an outage)."""
    missing = trading_days(start, end).difference(pd.DatetimeIndex(long["date"].unique()))
    return [f"no returns on trading day {d:%Y-%m-%d}" for d in missing[:5]] + (
        [f"... and {len(missing) - 5} more"] if len(missing) > 5 else []
    )


def build(partitions) -> list:
    @asset(
        partitions_def=partitions,
        group_name="ingest",
        metadata=PARTITION_COLUMN,
        backfill_policy=BackfillPolicy.single_run(),
        check_specs=gate_specs(
            "raw_returns", ["finite_bounded", "unique_date_ticker", "enough_names"]
        ),
        output_required=False,
        pool=DUCKDB_POOL,
    )
    def raw_returns(context: AssetExecutionContext, source: DataSourceResource):
        """Daily simple returns of every name (long: date, ticker, ret), one partition per day.

        A history backfill runs as a single run. Refused before storage: non-finite or
        absurd returns, duplicate (date, ticker), thin cross-sections, and an empty
        cross-section on a trading day (an exchange holiday stores nothing, by design).
        """
        start, end = _span(context)
        long = source.get().returns(start, end)
        long = long[(long["date"] >= start) & (long["date"] <= end)][RETURNS_COLUMNS]
        problems = check_returns(long, source.min_names)
        problems["enough_names"] = problems["enough_names"] + _outages(long, start, end)
        metadata = {
            "rows": len(long),
            "days": int(long["date"].nunique()),
            "names": int(long["ticker"].nunique()),
            "source": source.source,
        }
        yield from gate(context, long.reset_index(drop=True), problems, metadata)

    @asset(
        partitions_def=partitions,
        group_name="ingest",
        metadata=PARTITION_COLUMN,
        backfill_policy=BackfillPolicy.single_run(),
        check_specs=gate_specs("market_observables", ["observables_valid"]),
        output_required=False,
        pool=DUCKDB_POOL,
    )
    def market_observables(context: AssetExecutionContext, source: DataSourceResource):
        """Market return, a volatility index (VIX-like), a macro slope (term spread) and the
        regime label (0 expansion, 1 contraction, from the trailing market trend) per day."""
        start, end = _span(context)
        obs = source.get().observables(start, end)
        obs = obs[(obs["date"] >= start) & (obs["date"] <= end)][OBSERVABLE_COLUMNS]
        values = obs[["market", "volatility", "macro_slope"]].to_numpy(dtype=float)
        problems = []
        if not np.isfinite(values).all():
            problems.append(f"{int((~np.isfinite(values)).sum())} non-finite observables")
        if not obs["regime"].isin([0, 1]).all():
            problems.append("regime labels outside {0, 1}")
        metadata = {
            "rows": len(obs),
            "contraction_share": float(obs["regime"].mean()) if len(obs) else 0.0,
        }
        yield from gate(
            context, obs.reset_index(drop=True), {"observables_valid": problems}, metadata
        )

    return [raw_returns, market_observables]
