"""The interface every returns source offers to the pipeline."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from vae_pipeline.core.panel import RETURNS_COLUMNS, to_long, to_wide  # noqa: F401  (re-exported)

OBSERVABLE_COLUMNS = ["date", "market", "volatility", "macro_slope", "regime"]


class ReturnsSource(Protocol):
    """A source of daily returns, observables and (when known) the truth."""

    name: str

    def returns(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Long frame ``date, ticker, ret`` for trading days in [start, end]."""

    def observables(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
        """Frame with ``OBSERVABLE_COLUMNS`` for trading days in [start, end]."""

    def sectors(self) -> pd.Series:
        """ticker -> sector name."""

    def oracle_covariance(self, date: pd.Timestamp, tickers: list[str]) -> np.ndarray | None:
        """The true next-day covariance at ``date`` when known (synthetic), else None."""

    def planted_anomalies(self) -> pd.Series | None:
        """ticker -> planted anomaly flag when known (synthetic), else None."""

    def true_factors(self, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame | None:
        """True factor returns (index date) when known, else None."""

    def first_date(self) -> pd.Timestamp | None:
        """The first trading day holding a return (None: unbounded, e.g. synthetic).

        Days before it are "before the data", not outages."""

    def last_date(self) -> pd.Timestamp | None:
        """The last trading day holding a return (None: unbounded, e.g. synthetic).

        ``vae run`` without ``--day`` materialises min(last complete trading day, this)."""


def first_date(source) -> pd.Timestamp | None:
    """``source.first_date()``, or None for a source without the method."""
    method = getattr(source, "first_date", None)
    return method() if callable(method) else None


def last_date(source) -> pd.Timestamp | None:
    """``source.last_date()``, or None for a source without the method."""
    method = getattr(source, "last_date", None)
    return method() if callable(method) else None
