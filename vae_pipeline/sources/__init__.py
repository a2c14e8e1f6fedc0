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
    """The source named by ``settings.data.source`` (see ``vae_pipeline.settings``)."""
    if settings.data.source == "synthetic":
        return SyntheticSource(
            start=settings.data.start,
            n_names=settings.data.n_names,
            kind=settings.data.kind,
            seed=settings.seed,
        )
    if settings.data.source == "csv":
        return CsvSource(
            settings.data.prices_path,
            sectors_path=settings.data.sectors_path,
            factors_path=settings.data.factors_path,
            macro_path=settings.data.macro_path,
            market_path=settings.data.market_path,
            cleaning=settings.cleaning(),
            min_names=settings.data.min_names,
        )
    if settings.data.source == "yfinance":
        return YFinanceSource(
            settings.data.tickers,
            str(settings.data.universe_path) if settings.data.universe_path else None,
            start=settings.data.start,
            cache_path=str(settings.data.cache_path or settings.storage.db_path),
            factors_path=str(settings.data.factors_path) if settings.data.factors_path else None,
            macro_path=str(settings.data.macro_path) if settings.data.macro_path else None,
            cleaning=settings.cleaning(),
            min_names=settings.data.min_names,
            attempts=settings.data.fetch_retries,
        )
    raise ValueError(
        f"unknown data source {settings.data.source!r}: use 'synthetic', 'csv' or 'yfinance'"
    )


def default_day(settings, today: pd.Timestamp | None = None) -> pd.Timestamp:
    """The day ``vae run`` materialises by default: ``today`` (default: the last complete
    trading day), or the source's last day with data when that is earlier (a file that ends
    in the past)."""
    today = latest_trading_day() if today is None else pd.Timestamp(today)
    last = last_date(make_source(settings))
    return today if last is None else min(today, pd.Timestamp(last))
