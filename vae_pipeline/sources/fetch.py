"""Downloads that behave: yfinance prices, Kenneth French factors and FRED series.

- **Cache**: every complete download is stored in DuckDB (tables ``download_cache`` for the
  values, long ``date, series, value``, and ``download_requests`` for what was asked), keyed by
  provider and request (tickers or series, start, end). A request already cached is read back
  and never downloaded again.
- **Retries**: a failed or partial download is retried with exponential backoff (1 s, 2 s,
  4 s, ...); after the last attempt a :class:`FetchError` says what failed and why.
- **Partial downloads are never stored as complete**: values and the request row are written
  in one transaction, and only once every requested ticker / series has data.

Each fetcher takes the library call as an argument (``download=yf.download``, ``reader=
pandas_datareader.data.DataReader``) so the tests feed it frames of the exact shapes those
libraries return, offline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pandas as pd

from vae_pipeline.store import connection

FRENCH_DAILY = "F-F_Research_Data_Factors_daily"
FRED_SERIES = {"volatility": "VIXCLS", "macro_slope": "T10Y2Y"}


class FetchError(RuntimeError):
    """A download that failed after every retry (or came back incomplete)."""


class PartialDownload(FetchError):
    """Some requested tickers / series came back without data."""


def with_retries(
    fn: Callable[[], pd.DataFrame],
    what: str,
    attempts: int = 4,
    base_delay: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
):
    """``fn()`` retried on any exception with delays base, 2 base, 4 base, ...; then FetchError."""
    last: Exception | None = None
    for attempt in range(max(attempts, 1)):
        try:
            return fn()
        except Exception as exc:  # network errors, rate limits, partial data: all retried
            last = exc
            if attempt < attempts - 1:
                sleep(base_delay * 2**attempt)
    raise FetchError(
        f"{what}: failed after {attempts} attempt{'s' if attempts > 1 else ''}: "
        f"{type(last).__name__}: {last}"
    ) from last


class DownloadCache:
    """Complete raw downloads in a DuckDB file (the pipeline's own file by default)."""

    def __init__(self, path: str | Path):
        self.path = str(path)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        con = connection.connect(self.path)  # the store's door: lock retry, clear errors
        con.execute(
            "create table if not exists download_requests (provider varchar, request varchar, "
            "fetched_at timestamp, n_rows bigint, complete boolean)"
        )
        con.execute(
            "create table if not exists download_cache (provider varchar, request varchar, "
            "date timestamp, series varchar, value double)"
        )
        return con

    def get(self, provider: str, request: str) -> pd.DataFrame | None:
        """The cached wide frame (index date, one column per series), or None."""
        with self._connect() as con:
            found = con.execute(
                "select count(*) from download_requests where provider = ? and request = ? "
                "and complete",
                [provider, request],
            ).fetchall()[0][0]
            if not found:
                return None
            long = con.execute(
                "select date, series, value from download_cache where provider = ? and request = ?",
                [provider, request],
            ).df()
        wide = long.pivot(index="date", columns="series", values="value")
        wide.index = pd.DatetimeIndex(wide.index, name="date").astype("datetime64[ns]")
        wide.columns.name = None
        return wide.sort_index()

    def put(self, provider: str, request: str, wide: pd.DataFrame) -> None:
        """Store a complete download (values and request row in one transaction)."""
        long = (
            wide.rename_axis(index="date", columns="series")
            .stack(future_stack=True)
            .dropna()
            .rename("value")
            .reset_index()[["date", "series", "value"]]
        )
        long.insert(0, "request", request)
        long.insert(0, "provider", provider)
        long["series"] = long["series"].astype(str)
        with self._connect() as con:
            con.execute("begin transaction")
            try:
                con.execute(
                    "delete from download_cache where provider = ? and request = ?",
                    [provider, request],
                )
                con.execute(
                    "delete from download_requests where provider = ? and request = ?",
                    [provider, request],
                )
                con.register("incoming", long)
                con.execute("insert into download_cache select * from incoming")
                con.execute(
                    "insert into download_requests values (?, ?, current_timestamp, ?, true)",
                    [provider, request, len(long)],
                )
                con.execute("commit")
            except BaseException:
                con.execute("rollback")
                raise

    def requests(self) -> pd.DataFrame:
        with self._connect() as con:
            return con.execute("select * from download_requests order by fetched_at").df()


def _request(**parts) -> str:
    return json.dumps(parts, sort_keys=True, default=str)


def _cached(cache, provider, request, fetch, what, attempts, sleep) -> tuple[pd.DataFrame, bool]:
    """(frame, from_cache): the cached frame, or a fresh complete download that is then cached."""
    if cache is not None and (hit := cache.get(provider, request)) is not None:
        return hit, True
    frame = with_retries(fetch, what, attempts=attempts, sleep=sleep)
    if cache is not None:
        cache.put(provider, request, frame)
    return frame, False


# ---------------------------------------------------------------- yfinance


def yfinance_close(raw: pd.DataFrame, tickers: list[str]) -> pd.DataFrame:
    """Adjusted closes (index date, one column per ticker) from ``yf.download``'s frame.

    Handles the column MultiIndex (``Price`` x ``Ticker``, ``group_by='column'``, the default),
    the ``group_by='ticker'`` order, and the flat columns older versions give for one ticker.
    Raises :class:`PartialDownload` naming the tickers that came back empty.
    """
    if raw is None or raw.empty:
        raise PartialDownload(f"yfinance returned no data for {len(tickers)} tickers")
    field = "Adj Close"
    if isinstance(raw.columns, pd.MultiIndex):
        levels = [set(map(str, raw.columns.get_level_values(i))) for i in range(2)]
        price_level = 0 if {"Close", "Adj Close"} & levels[0] else 1
        if field not in levels[price_level]:
            field = "Close"
        close = raw.xs(field, axis=1, level=price_level)
    else:
        if field not in raw.columns:
            field = "Close"
        close = raw[[field]].set_axis(tickers[:1], axis=1)
    close = close.reindex(columns=tickers)
    index = pd.DatetimeIndex(close.index)
    close.index = (index.tz_localize(None) if index.tz is not None else index).normalize()
    close.index.name = "date"
    close.columns.name = None
    empty = [t for t in tickers if close[t].isna().all()]
    if empty:
        raise PartialDownload(
            f"yfinance returned no prices for {len(empty)} of {len(tickers)} tickers: "
            f"{', '.join(empty[:10])}{' ...' if len(empty) > 10 else ''}"
        )
    return close.astype(float)


def fetch_yfinance_prices(
    tickers: list[str],
    start: str,
    end: str,
    cache: DownloadCache | None = None,
    download: Callable | None = None,
    attempts: int = 4,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[pd.DataFrame, bool]:
    """Adjusted daily closes of ``tickers`` in [start, end) via yfinance; (frame, from_cache)."""
    tickers = sorted({t.strip().upper() for t in tickers if t.strip()})
    if not tickers:
        raise ValueError("no tickers to download")
    if download is None:
        try:
            import yfinance as yf
        except ImportError as exc:
            raise FetchError("source=yfinance needs yfinance: pip install -e '.[real]'") from exc
        download = yf.download

    def fetch() -> pd.DataFrame:
        raw = download(
            tickers,
            start=start,
            end=end,
            auto_adjust=True,
            progress=False,
            group_by="column",
            threads=True,
        )
        return yfinance_close(raw, tickers)

    request = _request(tickers=tickers, start=start, end=end, adjusted=True)
    return _cached(
        cache,
        "yfinance",
        request,
        fetch,
        f"yfinance download of {len(tickers)} tickers {start}..{end}",
        attempts,
        sleep,
    )


# ---------------------------------------------------------------- pandas-datareader


def _reader(reader: Callable | None) -> Callable:
    if reader is not None:
        return reader
    try:
        from pandas_datareader.data import DataReader
    except ImportError as exc:
        raise FetchError("downloads need pandas-datareader: pip install -e '.[real]'") from exc
    return DataReader


def french_factors(raw) -> pd.DataFrame:
    """``mkt_rf, smb, hml, rf`` in decimals from datareader's famafrench dict of frames.

    ``DataReader(..., "famafrench")`` returns ``{0: frame in percent (index Date), "DESCR": text}``.
    """
    frame = raw[0] if isinstance(raw, dict) else raw
    if frame is None or frame.empty or "Mkt-RF" not in frame.columns:
        raise PartialDownload("the French daily factors came back empty or without Mkt-RF")
    out = frame.rename(columns=lambda c: str(c).strip().lower().replace("-", "_")) / 100.0
    index = pd.DatetimeIndex(
        pd.PeriodIndex(out.index).to_timestamp()
        if isinstance(out.index, pd.PeriodIndex)
        else out.index
    )
    out.index = index.normalize().rename("date")
    return out.astype(float)


def fetch_french_factors(
    start: str,
    end: str,
    cache: DownloadCache | None = None,
    reader: Callable | None = None,
    attempts: int = 4,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[pd.DataFrame, bool]:
    """Daily Fama-French 3 factors (decimals) in [start, end]; (frame, from_cache)."""
    read = _reader(reader)
    request = _request(dataset=FRENCH_DAILY, start=start, end=end)
    return _cached(
        cache,
        "famafrench",
        request,
        lambda: french_factors(read(FRENCH_DAILY, "famafrench", start, end)),
        f"French factors {start}..{end}",
        attempts,
        sleep,
    )


def fred_frame(raw: pd.DataFrame, series: list[str]) -> pd.DataFrame:
    """datareader's FRED frame (index DATE, one column per series, NaN on holidays) checked."""
    if raw is None or raw.empty:
        raise PartialDownload(f"FRED returned nothing for {', '.join(series)}")
    missing = [s for s in series if s not in raw.columns or raw[s].isna().all()]
    if missing:
        raise PartialDownload(f"FRED returned no values for {', '.join(missing)}")
    out = raw[series].astype(float)
    out.index = pd.DatetimeIndex(out.index).normalize().rename("date")
    return out


def fetch_fred(
    series: list[str],
    start: str,
    end: str,
    cache: DownloadCache | None = None,
    reader: Callable | None = None,
    attempts: int = 4,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[pd.DataFrame, bool]:
    """FRED series (e.g. VIXCLS, T10Y2Y) in [start, end]; (frame, from_cache)."""
    read = _reader(reader)
    series = list(series)
    request = _request(series=series, start=start, end=end)
    return _cached(
        cache,
        "fred",
        request,
        lambda: fred_frame(read(series, "fred", start, end), series),
        f"FRED {', '.join(series)} {start}..{end}",
        attempts,
        sleep,
    )
