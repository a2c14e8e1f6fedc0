"""Trailing windows of the per-day ingest tables, read from storage by the assets (Dagster layer).

Every model asset of partition d needs the ~530-day ``raw_returns`` window (and the regime labels
of the same days). Declared as Dagster *inputs* with a ``TimeWindowPartitionMapping`` of W
weekdays, each window costs ~10 ms of partition arithmetic twice per input and step (Dagster
walks the weekday cron one partition at a time: once to load the input, once for its data
provenance) plus two events, before a byte is read; a partition had 13 such inputs. Now:

- the assets downstream of ``standardised_panel`` read its window (the admitted names over
  [d-W+1, d]) through :class:`WindowStore` and depend on ``standardised_panel`` only, as in
  DESIGN.md's graph: ``raw_returns`` reaches them through it;
- the windows an asset reads besides (``standardised_panel``'s own ``raw_returns`` window, the
  ``market_observables`` windows, ``anomaly_report``'s evaluation window) stay declared, as
  ``AssetDep`` with the same mapping: lineage, UI graph and backfill ordering are unchanged, and
  Dagster maps each one once (for provenance) instead of twice.

Reads come from the storage the IO manager writes (``VAE_PIPELINE_IO``: the DuckDB file, through
the per-process frame cache, or the Parquet folder). Every window ending on day d is cut from one
read of the W + H days up to d (``span``), so the assets of a partition share a single read and
pivot of the returns (and of the observables).
"""

from __future__ import annotations

import os

import pandas as pd
from dagster import ConfigurableResource
from pydantic import Field

from vae_pipeline.core.panel import expected_window, to_wide
from vae_pipeline.store.frame_cache import FRAMES

# One fixed statement per table (no SQL is assembled from values; the dates are bound).
_QUERIES = {
    "raw_returns": "select * from main.raw_returns where date >= ? and date <= ?",
    "market_observables": "select * from main.market_observables where date >= ? and date <= ?",
}


class WindowStore(ConfigurableResource):
    """Reads ``raw_returns`` / ``market_observables`` rows of a date range from the pipeline's
    storage: ``duckdb`` (the file, cached per process while unchanged) or ``parquet``."""

    kind: str = Field("duckdb", description="duckdb | parquet (as VAE_PIPELINE_IO)")
    database: str = Field("data/vae_pipeline.duckdb", description="the DuckDB file")
    root: str = Field("data/parquet", description="the Parquet root (kind=parquet)")
    cache_mb: int = Field(512, ge=0, description="MB of windows kept per process (0: none)")
    span: int = Field(
        0,
        ge=0,
        description="trading days read (and cached) for any window ending on a day, at least: "
        "W + H serves every asset of a partition from one read",
    )

    def returns(self, end, window: int) -> pd.DataFrame:
        """Wide (date x ticker) returns of the ``window`` trading days ending at ``end``: what
        is stored of them (the reader's gate decides whether that is complete)."""
        return self._window("raw_returns", end, window, wide=True)

    def observables(self, end, window: int) -> pd.DataFrame:
        """The ``market_observables`` rows (long, one per day) of the same span."""
        return self._window("market_observables", end, window, wide=False)

    def _window(self, table: str, end, window: int, wide: bool) -> pd.DataFrame:
        first, last = _span(end, window)
        read_from, _ = _span(end, max(window, self.span))
        frame = self._read(table, read_from, last, wide)
        if read_from == first or not len(frame):
            return frame
        if wide:
            return frame.loc[frame.index >= first]
        return frame[pd.to_datetime(frame["date"]) >= first].reset_index(drop=True)

    def _read(self, table: str, first: pd.Timestamp, last: pd.Timestamp, wide: bool):
        if self.kind == "parquet":
            frame = _read_parquet(self.root, table, first, last)
            return to_wide(frame) if wide and len(frame) else frame
        if self.kind != "duckdb":
            raise ValueError(f"WindowStore kind {self.kind!r}: choose duckdb or parquet")
        key = ("window", table, first, last, wide)
        cache_bytes = self.cache_mb * 2**20
        if cache_bytes > 0 and (found := FRAMES.get(self.database, key)) is not None:
            return found
        from vae_pipeline.pipeline.io_managers import table_exists, transaction

        if not os.path.exists(self.database):
            return pd.DataFrame()
        with transaction(self.database, {}, write=False) as session:
            if not table_exists(session.conn, "main", table):
                return pd.DataFrame()
            frame = session.conn.execute(
                _QUERIES[table], [first.to_pydatetime(), last.to_pydatetime()]
            ).fetchdf()
        if wide and len(frame):
            frame = to_wide(frame)
        if len(frame):
            FRAMES.put(self.database, key, table, frame, session.before, cache_bytes)
        return frame


def _span(end, window: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    end = pd.Timestamp(end).normalize()
    return expected_window(end, window)[0], end


def _read_parquet(root: str, table: str, first: pd.Timestamp, last: pd.Timestamp) -> pd.DataFrame:
    """The per-day files ``{root}/{table}/{YYYY-MM-DD}.parquet`` of [first, last]
    (the layout of :class:`vae_pipeline.pipeline.parquet_io.ParquetIOManager`)."""
    import fsspec

    fs, base = fsspec.core.url_to_fs(root)
    folder = f"{base.rstrip('/')}/{table}"
    if not fs.exists(folder):
        return pd.DataFrame()
    lo, hi = f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}"
    frames = []
    for path in sorted(fs.ls(folder, detail=False)):
        name = os.path.basename(path)
        if name.endswith(".parquet") and lo <= name[: -len(".parquet")] <= hi:
            with fs.open(path, "rb") as f:
                frames.append(pd.read_parquet(f))
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def store_for(settings) -> WindowStore:
    """The store over the storage ``settings.storage`` names (as ``io_manager_for``)."""
    return WindowStore(
        kind=settings.storage.io,
        database=str(settings.storage.db_path),
        root=settings.storage.parquet_root,
        cache_mb=settings.storage.cache_mb,
        span=settings.evaluation.window + settings.evaluation.horizon,  # the longest window
    )
