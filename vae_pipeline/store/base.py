"""What every storage backend offers, so readers and writers never care which one it is.

Two backends: :class:`~vae_pipeline.store.duckdb_store.DuckDBStore` (one file, one table per
asset, the default) and :class:`~vae_pipeline.store.parquet_store.ParquetStore` (one file per
asset partition under a local folder or an fsspec URL, for workers on several machines).
Rows of a partitioned table are addressed by a half-open date :class:`Span` on the ``date``
column; ``None`` means the whole table.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Span:
    """Days ``start <= date < end`` (a Dagster time window, or an inclusive range via :meth:`days`)."""

    start: pd.Timestamp
    end: pd.Timestamp

    @classmethod
    def days(cls, first, last) -> Span:
        """The inclusive range of days [first, last]."""
        first, last = pd.Timestamp(first).normalize(), pd.Timestamp(last).normalize()
        return cls(first, last + pd.Timedelta(days=1))

    @classmethod
    def of_window(cls, window) -> Span:
        """A Dagster ``TimeWindow`` (timezone dropped: the stored dates are naive)."""
        return cls(_naive(window.start), _naive(window.end))

    def keys(self) -> list[str]:
        """The calendar days of the span as partition keys (YYYY-MM-DD)."""
        return [f"{d:%Y-%m-%d}" for d in pd.date_range(self.start, self.end, inclusive="left")]


def _naive(moment) -> pd.Timestamp:
    stamp = pd.Timestamp(moment)
    return stamp.tz_localize(None) if stamp.tzinfo is not None else stamp


class StoreError(RuntimeError):
    """The store cannot be used (nothing there yet, or not a vae_pipeline store)."""


class Store(ABC):
    """A place holding the asset tables (and the models' weights)."""

    #: whether model weights live inside the table rows (else as files, see ``store.models``)
    inline_blobs: bool = True

    @abstractmethod
    def describe(self) -> str:
        """Where the data lives, for messages ("the DuckDB file data/x.duckdb")."""

    @abstractmethod
    def exists(self) -> bool:
        """Whether anything was ever stored here."""

    @abstractmethod
    def tables(self) -> set[str]:
        """The tables holding rows (or at least created)."""

    @abstractmethod
    def read(
        self,
        table: str,
        span: Span | None = None,
        transform: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    ) -> pd.DataFrame:
        """The rows of ``table`` in ``span`` (all rows if None), normalised to its schema; an
        empty frame when the table does not exist. ``transform`` (a pure function of the rows,
        a pivot say) is applied before the result is cached, so a cache hit skips it too."""

    @abstractmethod
    def replace(self, table: str, frame: pd.DataFrame, span: Span | None = None) -> None:
        """Atomically replace the rows of ``table`` in ``span`` (the whole table if None) by
        ``frame``: a reader sees all the old rows or all the new ones. An empty frame deletes
        the span's rows and creates no table."""

    def must_exist(self) -> None:
        """Raise :class:`StoreError` with a one-line message when nothing is stored yet."""
        if not self.exists():
            raise StoreError(f"no data yet at {self.describe()}: run `make run` first")

    def stored_days(self, table: str, span: Span) -> set[pd.Timestamp]:
        """The days of ``span`` on which ``table`` holds a row (none when it does not exist)."""
        rows = self.read(table, span)
        return set(pd.to_datetime(rows["date"]).dt.normalize()) if len(rows) else set()

    # Weights files (only for backends with ``inline_blobs = False``).
    def put_blob(self, path: str, data: bytes) -> None:
        raise NotImplementedError

    def get_blob(self, path: str) -> bytes:
        raise NotImplementedError

    def delete_blob(self, path: str) -> None:
        raise NotImplementedError
