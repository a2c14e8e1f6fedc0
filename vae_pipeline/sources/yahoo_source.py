"""The ``yfinance`` source: adjusted closes downloaded with yfinance, cleaned like a csv file.

Tickers come from ``VAE_PIPELINE_TICKERS`` (comma-separated) and/or ``VAE_PIPELINE_UNIVERSE``
(a CSV with a ``ticker`` column and optionally ``sector`` / ``gics_sector``). Prices are asked
from a few days before ``VAE_PIPELINE_START`` up to the last complete trading day. Observables:
the files of the csv source when given, else the French daily factors and FRED's VIXCLS and
T10Y2Y via pandas-datareader; a failed download falls back (named in metadata) instead of
failing the pipeline. Every download is cached in DuckDB (``sources.fetch``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pandas as pd

from vae_pipeline.core.calendar import latest_trading_day
from vae_pipeline.core.cleaning import CleaningConfig
from vae_pipeline.sources.fetch import (
    FRED_SERIES,
    DownloadCache,
    FetchError,
    fetch_fred,
    fetch_french_factors,
    fetch_yfinance_prices,
)
from vae_pipeline.sources.files import (
    DataFileError,
    PanelInput,
    load_factors,
    load_macro,
    load_sectors,
    read_table,
    to_grid,
)
from vae_pipeline.sources.panel_source import LoadedPanel, PanelSource, build_panel

LEAD_DAYS = 10  # calendar days before the first partition, for its first return


def universe_tickers(tickers: str | None, universe_path: str | None) -> tuple[list[str], pd.Series]:
    """Tickers (sorted, upper case) and the sectors the universe file gives (may be empty)."""
    names = [t.strip().upper() for t in (tickers or "").split(",") if t.strip()]
    sectors = pd.Series(dtype=str)
    if universe_path:
        frame = read_table(universe_path, "universe file (VAE_PIPELINE_UNIVERSE)")
        col = next((c for c in frame.columns if c.lower() in ("ticker", "symbol")), None)
        if col is None:
            raise DataFileError(f"{universe_path}: expected a 'ticker' column")
        names += [str(t).strip().upper() for t in frame[col].dropna()]
        if any(c.lower() in ("sector", "gics_sector") for c in frame.columns):
            sectors = load_sectors(universe_path)
            sectors.index = sectors.index.str.upper()
    names = sorted(set(names))
    if not names:
        raise ValueError("source=yfinance needs VAE_PIPELINE_TICKERS or VAE_PIPELINE_UNIVERSE")
    return names, sectors


@lru_cache(maxsize=2)
def _load(
    tickers: tuple[str, ...],
    sectors_key: tuple,
    start: str,
    end: str,
    cache_path: str,
    factors_path: str | None,
    macro_path: str | None,
    config: CleaningConfig,
    attempts: int,
) -> LoadedPanel:
    cache = DownloadCache(cache_path)
    prices, _ = fetch_yfinance_prices(list(tickers), start, end, cache=cache, attempts=attempts)
    notes: dict = {"layout": "yfinance adjusted closes"}
    data = PanelInput("prices", to_grid(prices, "yfinance download", notes), "yfinance", notes)
    labels: dict[str, str] = {}
    factors = macro = None
    if factors_path:
        factors, units = load_factors(factors_path)
        labels["factors"] = f"{Path(factors_path).name}, {units}"
    else:
        try:
            factors, cached = fetch_french_factors(start, end, cache=cache, attempts=attempts)
            labels["factors"] = "French library via pandas-datareader" + (
                " (cached)" if cached else ""
            )
        except FetchError as exc:
            labels["factors_error"] = str(exc)
    if macro_path:
        macro, used = load_macro(macro_path)
        labels.update({k: f"{v} from {Path(macro_path).name}" for k, v in used.items()})
    else:
        try:
            fred, _ = fetch_fred(
                list(FRED_SERIES.values()), start, end, cache=cache, attempts=attempts
            )
            macro = fred.rename(columns={"VIXCLS": "vix", "T10Y2Y": "macro_slope"})
            labels.update({k: f"FRED {v}" for k, v in FRED_SERIES.items()})
        except FetchError as exc:
            labels["macro_error"] = str(exc)
    panel = build_panel(
        data,
        config,
        sectors=pd.Series(dict(sectors_key), dtype=str),
        factors=factors,
        macro=macro,
        labels=labels,
    )
    for key in ("factors_error", "macro_error"):
        if key in labels:
            panel.observables_info[key.replace("_error", "_download_failed")] = labels[key]
    return panel


class YFinanceSource(PanelSource):
    """Prices downloaded with yfinance (cached in DuckDB), then the csv source's cleaning."""

    name = "yfinance"

    def __init__(
        self,
        tickers: str | None,
        universe_path: str | None,
        start: str,
        cache_path: str,
        factors_path: str | None = None,
        macro_path: str | None = None,
        cleaning: CleaningConfig | None = None,
        min_names: int = 10,
        attempts: int = 4,
        end: str | None = None,
    ):
        super().__init__(min_names=min_names)
        self.tickers, sectors = universe_tickers(tickers, universe_path)
        self.sectors_key = tuple(sorted(sectors.items()))
        self.start = f"{pd.Timestamp(start) - pd.Timedelta(days=LEAD_DAYS):%Y-%m-%d}"
        # yfinance's end is exclusive: the day after the last complete trading day.
        last = pd.Timestamp(end) if end else latest_trading_day()
        self.end = f"{last + pd.Timedelta(days=1):%Y-%m-%d}"
        self.cache_path, self.attempts = str(cache_path), attempts
        self.factors_path, self.macro_path = factors_path, macro_path
        self.cleaning = cleaning or CleaningConfig()

    @property
    def panel(self) -> LoadedPanel:
        return _load(
            tuple(self.tickers),
            self.sectors_key,
            self.start,
            self.end,
            self.cache_path,
            self.factors_path,
            self.macro_path,
            self.cleaning,
            self.attempts,
        )
