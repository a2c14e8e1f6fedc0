"""Where returns come from: the seeded synthetic panel, the user's files, or yfinance (no Dagster).

- ``synthetic`` (default, offline): :class:`SyntheticSource`, with the truth known;
- ``csv``: :class:`CsvSource`, the user's prices / returns file plus optional sectors,
  factors, macro and market-index files, cleaned by ``core.cleaning``;
- ``yfinance``: :class:`YFinanceSource`, downloads cached in DuckDB, cleaned the same way.
"""

from __future__ import annotations

import pandas as pd

from vae_pipeline.core.calendar import latest_trading_day
from vae_pipeline.sources.base import ReturnsSource, last_date
from vae_pipeline.sources.csv_source import CsvSource
from vae_pipeline.sources.files import DataFileError
from vae_pipeline.sources.synthetic import SyntheticSource
from vae_pipeline.sources.yahoo_source import YFinanceSource

__all__ = [
    "CsvSource",
    "DataFileError",
    "ReturnsSource",
    "SyntheticSource",
    "YFinanceSource",
    "default_day",
    "make_source",
]


def make_source(settings) -> ReturnsSource:
    """The source named by ``settings.source`` (see ``vae_pipeline.settings``)."""
    if settings.source == "synthetic":
        return SyntheticSource(
            start=settings.start, n_names=settings.n_names, kind=settings.kind, seed=settings.seed
        )
    if settings.source == "csv":
        return CsvSource(
            settings.prices_path,
            sectors_path=settings.sectors_path,
            factors_path=settings.factors_path,
            macro_path=settings.macro_path,
            market_path=settings.market_path,
            cleaning=settings.cleaning(),
            min_names=settings.min_names,
        )
    if settings.source == "yfinance":
        return YFinanceSource(
            settings.tickers,
            str(settings.universe_path) if settings.universe_path else None,
            start=settings.start,
            cache_path=str(settings.cache_path or settings.db_path),
            factors_path=str(settings.factors_path) if settings.factors_path else None,
            macro_path=str(settings.macro_path) if settings.macro_path else None,
            cleaning=settings.cleaning(),
            min_names=settings.min_names,
            attempts=settings.fetch_retries,
        )
    raise ValueError(
        f"unknown data source {settings.source!r}: use 'synthetic', 'csv' or 'yfinance'"
    )


def default_day(settings, today: pd.Timestamp | None = None) -> pd.Timestamp:
    """The day ``vae run`` materialises by default: ``today`` (default: the last complete
    trading day), or the source's last day with data when that is earlier (a file that ends
    in the past)."""
    today = latest_trading_day() if today is None else pd.Timestamp(today)
    last = last_date(make_source(settings))
    return today if last is None else min(today, pd.Timestamp(last))
