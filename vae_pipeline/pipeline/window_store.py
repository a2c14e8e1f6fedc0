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
"""

from __future__ import annotations

import pandas as pd
from dagster import ConfigurableResource
from pydantic import Field

from vae_pipeline.core.panel import expected_window
from vae_pipeline.core.refit import training_window_returns
from vae_pipeline.core.truth import GroundTruth
from vae_pipeline.settings import StorageSettings
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
