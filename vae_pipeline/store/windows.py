"""Trailing windows of the per-day ingest tables (``raw_returns``, ``market_observables``).

The pure, Dagster-free half of :mod:`vae_pipeline.pipeline.window_store`: every window ending
on day d is cut from one read of the ``span`` trading days up to d (W + H serves every asset of
a partition), so the assets of a partition share a single read and pivot of the returns (and
of the observables); on the DuckDB backend that read is kept in the per-process frame cache.
"""

from __future__ import annotations

import pandas as pd

from vae_pipeline.core.panel import expected_window, to_wide
from vae_pipeline.store.base import Span, Store


class WindowReader:
    """Date-range reads of the ingest tables from a :class:`~vae_pipeline.store.base.Store`."""

    def __init__(self, store: Store, span: int = 0) -> None:
        self.store = store
        self.span = int(span)

    def returns(self, end, window: int) -> pd.DataFrame:
        """Wide (date x ticker) returns of the ``window`` trading days ending at ``end``: what
        is stored of them (the reader's gate decides whether that is complete)."""
        return self._window("raw_returns", end, window, wide=True)

    def observables(self, end, window: int) -> pd.DataFrame:
        """The ``market_observables`` rows (long, one per day) of the same span."""
        return self._window("market_observables", end, window, wide=False)

    def rows(self, table: str, end, window: int) -> pd.DataFrame:
        """The stored rows of any per-day table over the ``window`` trading days to ``end``."""
        return self._window(table, end, window, wide=False)

    def _window(self, table: str, end, window: int, wide: bool) -> pd.DataFrame:
        first, last = _span(end, window)
        read_from, _ = _span(end, max(window, self.span))
        frame = self.store.read(table, Span.days(read_from, last), to_wide if wide else None)
        if read_from == first or not len(frame):
            return frame
        if wide:
            return frame.loc[frame.index >= first]
        return frame[pd.to_datetime(frame["date"]) >= first].reset_index(drop=True)


def _span(end, window: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    end = pd.Timestamp(end).normalize()
    return expected_window(end, window)[0], end
