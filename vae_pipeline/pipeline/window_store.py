"""Trailing windows of the per-day ingest tables, as a Dagster resource (Dagster layer).

Every model asset of partition d needs the ~530-day ``raw_returns`` window (and the regime labels
of the same days). Declared as Dagster *inputs* with a ``TimeWindowPartitionMapping`` of W
weekdays, each window costs ~10 ms of partition arithmetic twice per input and step (Dagster
walks the weekday cron one partition at a time: once to load the input, once for its data
provenance) plus two events, before a byte is read; a partition had 13 such inputs. Now:

- the assets downstream of ``standardised_panel`` read its window (the admitted names over
  [d-W+1, d]) through :class:`WindowStore` and depend on ``standardised_panel`` only, as in
  the design's graph (docs/architecture.md): ``raw_returns`` reaches them through it;
- the windows an asset reads besides (``standardised_panel``'s own ``raw_returns`` window, the
  ``market_observables`` windows, ``anomaly_report``'s evaluation window) stay declared, as
  ``AssetDep`` with the same mapping: lineage, UI graph and backfill ordering are unchanged, and
  Dagster maps each one once (for provenance) instead of twice.

The reads themselves are :class:`vae_pipeline.store.windows.WindowReader` over the store the IO
manager writes (the DuckDB file through the per-process frame cache, or the Parquet root).
An asset reads through :meth:`WindowStore.over` the days of its run: one read per table of
the union span of every day's window (a ranged run of 250 days reads each table once, not 250
times; the span is the same for every asset of the run, so the frame cache serves the rest),
sliced per day.
"""

from __future__ import annotations

from functools import lru_cache

import pandas as pd
from dagster import ConfigurableResource
from pydantic import Field

from vae_pipeline.core.panel import expected_window, to_wide
from vae_pipeline.core.refit import training_window_returns
from vae_pipeline.core.truth import GroundTruth
from vae_pipeline.settings import StorageSettings
from vae_pipeline.store.base import Span
from vae_pipeline.store.factory import open_store
from vae_pipeline.store.windows import WindowReader


class WindowStore(ConfigurableResource):
    """Reads ``raw_returns`` / ``market_observables`` rows of a date range from the pipeline's
    storage: ``duckdb`` (the file, cached per process while unchanged) or ``parquet``."""

    kind: str = Field("duckdb", description="duckdb | parquet (the IO manager's storage)")
    database: str = Field("data/vae_pipeline.duckdb", description="the DuckDB file")
    root: str = Field("data/parquet", description="the Parquet root (kind=parquet)")
    cache_mb: int = Field(512, ge=0, description="MB of windows kept per process (0: none)")
    span: int = Field(
        0,
        ge=0,
        description="trading days read (and cached) for any window ending on a day, at least: "
        "W + H serves every asset of a partition from one read",
    )

    def reader(self) -> WindowReader:
        config = StorageSettings(db_path=self.database, io=self.kind, parquet_root=self.root,
                               cache_mb=self.cache_mb)  # fmt: skip
        return WindowReader(open_store(config), span=self.span)

    def returns(self, end, window: int) -> pd.DataFrame:
        """Wide (date x ticker) returns of the ``window`` trading days ending at ``end``."""
        return self.reader().returns(end, window)

    def observables(self, end, window: int) -> pd.DataFrame:
        """The ``market_observables`` rows (long, one per day) of the same span."""
        return self.reader().observables(end, window)

    def training_window(self, day, window: int, scaler: pd.DataFrame) -> pd.DataFrame:
        """The W-day returns window of the names ``standardised_panel`` admitted (its order)."""
        return training_window_returns(self.returns(day, window), scaler, day, window)

    def missing_days(self, table: str, end, window: int) -> pd.DatetimeIndex:
        """Trading days of the ``window`` ending at ``end`` for which ``table`` stores no row."""
        expected = pd.DatetimeIndex(expected_window(pd.Timestamp(end), window))
        rows = self.reader().rows(table, end, window)
        stored = pd.DatetimeIndex(pd.to_datetime(rows["date"]).unique()) if len(rows) else []
        return expected.difference(stored)

    def ground_truth(self, day) -> GroundTruth | None:
        """The stored truth of ``day`` (synthetic data only), or None."""
        rows = self.reader().rows("ground_truth", day, 1)
        return GroundTruth.from_rows(rows) if len(rows) else None

    def over(self, days) -> RangeWindows:
        """The windows of the run's ``days`` (date order), from one read per table."""
        return RangeWindows(self.reader(), list(days), self.span)


SAME_DAY_TABLES = {"ground_truth"}


@lru_cache(maxsize=8192)
def _window_days(end: pd.Timestamp, window: int) -> pd.DatetimeIndex:
    """The ``window`` trading days ending at ``end``, memoised: a ranged run asks for the same
    few windows of each day from every asset, and the calendar arithmetic (~3 ms a call) was
    a tenth of a ranged run's non-training time."""
    return expected_window(end, window)


class RangeWindows:
    """The trailing windows of every day of a run, cut from one read per table of the span
    [first day of the longest window of the first day, last day] (the per-day answers are
    those of :class:`WindowStore`'s one-day methods)."""

    def __init__(self, reader: WindowReader, days, span: int) -> None:
        self.reader, self.span = reader, max(int(span), 1)
        self.last = pd.Timestamp(days[-1]).normalize() if len(days) else None
        self.first = _window_days(pd.Timestamp(days[0]), self.span)[0] if len(days) else None
        self.day0 = pd.Timestamp(days[0]).normalize() if len(days) else None
        self._frames: dict[tuple[str, bool], pd.DataFrame] = {}
        self._dates: dict[str, pd.DatetimeIndex] = {}

    def _start(self, table: str) -> pd.Timestamp:
        # a table read for the day itself only (the truth: O(N K + W K) rows a day) is read
        # from the run's first day, not from the start of its longest window
        return self.day0 if table in SAME_DAY_TABLES else self.first

    def _covers(self, table: str, end, window: int) -> bool:
        if self.last is None or pd.Timestamp(end) > self.last:
            return False
        return _window_days(pd.Timestamp(end).normalize(), window)[0] >= self._start(table)

    def _table(self, table: str, wide: bool) -> pd.DataFrame:
        if (table, wide) not in self._frames:
            span = Span.days(self._start(table), self.last)
            frame = self.reader.store.read(table, span, to_wide if wide else None)
            if not wide and len(frame):
                frame = frame.assign(date=pd.to_datetime(frame["date"]))
            self._frames[(table, wide)] = frame
        return self._frames[(table, wide)]

    def _cut(self, table: str, end, window: int, wide: bool) -> pd.DataFrame:
        if not self._covers(table, end, window):  # outside the run's span: read it on its own
            return self.reader._window(table, end, window, wide)
        frame = self._table(table, wide)
        if not len(frame):
            return frame
        end = pd.Timestamp(end).normalize()
        first = _window_days(end, window)[0]
        if wide:  # drop the names with no return in this window, as a read of it would
            return frame.loc[(frame.index >= first) & (frame.index <= end)].dropna(
                axis=1, how="all"
            )
        dates = frame["date"]
        return frame[(dates >= first) & (dates <= end)].reset_index(drop=True)

    def returns(self, end, window: int) -> pd.DataFrame:
        """Wide (date x ticker) returns of the ``window`` trading days ending at ``end``."""
        return self._cut("raw_returns", end, window, wide=True)

    def observables(self, end, window: int) -> pd.DataFrame:
        """The ``market_observables`` rows (long, one per day) of the same span."""
        return self._cut("market_observables", end, window, wide=False)

    def training_window(self, day, window: int, scaler: pd.DataFrame) -> pd.DataFrame:
        """The W-day returns window of the names ``standardised_panel`` admitted (its order)."""
        return training_window_returns(self.returns(day, window), scaler, day, window)

    def missing_days(self, table: str, end, window: int) -> pd.DatetimeIndex:
        """Trading days of the ``window`` ending at ``end`` for which ``table`` stores no row."""
        end = pd.Timestamp(end).normalize()
        expected = pd.DatetimeIndex(_window_days(end, window))
        if not self._covers(table, end, window):
            rows = self.reader._window(table, end, window, wide=False)
            stored = pd.DatetimeIndex(pd.to_datetime(rows["date"]).unique()) if len(rows) else []
            return expected.difference(stored)
        if table not in self._dates:  # the stored days of the run's span, found once
            if table == "raw_returns":  # the wide frame the windows are cut from: its dates
                dates = self._table(table, wide=True).index
            else:
                rows = self._table(table, wide=False)
                dates = pd.to_datetime(rows["date"]).unique() if len(rows) else []
            self._dates[table] = pd.DatetimeIndex(dates)
        return expected.difference(self._dates[table])

    def ground_truth(self, day) -> GroundTruth | None:
        """The stored truth of ``day`` (synthetic data only), or None."""
        rows = self._cut("ground_truth", day, 1, wide=False)
        return GroundTruth.from_rows(rows) if len(rows) else None


def window_store_for(settings) -> WindowStore:
    """The window resource over the configured storage (the IO managers' own)."""
    config = settings.storage
    return WindowStore(
        kind=config.io,
        database=str(config.db_path),
        root=config.parquet_root,
        cache_mb=config.cache_mb,
        span=settings.evaluation.window
        + settings.evaluation.horizon,  # anomaly_report's window, the longest
    )
