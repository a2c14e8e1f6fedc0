"""Fetchers offline, against frames in the exact shapes yfinance and pandas-datareader return:
the DuckDB cache, retries with backoff, partial downloads never cached; live calls opt-in."""

from __future__ import annotations

import socket

import duckdb
import numpy as np
import pandas as pd
import pytest

from vae_pipeline.core.calendar import trading_days
from vae_pipeline.sources import fetch
from vae_pipeline.sources.fetch import (
    DownloadCache,
    FetchError,
    fetch_fred,
    fetch_french_factors,
    fetch_yfinance_prices,
    with_retries,
)

DAYS = trading_days("2024-01-02", "2024-03-28")
TICKERS = ["AAPL", "MSFT", "XOM"]


def yf_frame(tickers=TICKERS, n=40, empty=(), group_by="column") -> pd.DataFrame:
    """What ``yf.download(tickers, auto_adjust=True)`` returns: columns (Price, Ticker)."""
    rng = np.random.default_rng(0)
    frames = {}
    for t in tickers:
        close = 100 * np.cumprod(1 + rng.normal(0, 0.01, n))
        f = pd.DataFrame(
            {
                "Close": close,
                "High": close * 1.01,
                "Low": close * 0.99,
                "Open": close,
                "Volume": rng.integers(1e6, 2e6, n).astype(float),
            },
            index=pd.DatetimeIndex(DAYS[:n], name="Date"),
        )
        frames[t] = f * np.nan if t in empty else f
    data = pd.concat(frames.values(), axis=1, keys=frames.keys(), names=["Ticker", "Price"])
    if group_by == "column":
        data.columns = data.columns.swaplevel(0, 1)
        data = data.sort_index(level=0, axis=1)
    return data


class FakeDownload:
    """Records calls; raises the queued errors first, then returns ``frame``."""

    def __init__(self, frame, errors=()):
        self.frame, self.errors, self.calls = frame, list(errors), 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return self.frame


def test_yfinance_multiindex_is_read_and_cached(tmp_path):
    cache = DownloadCache(tmp_path / "cache.duckdb")
    download = FakeDownload(yf_frame())
    close, cached = fetch_yfinance_prices(TICKERS, "2024-01-01", "2024-03-01", cache, download)
    assert not cached and download.calls == 1 and list(close.columns) == TICKERS
    np.testing.assert_allclose(close["MSFT"], yf_frame()[("Close", "MSFT")])
    again, cached = fetch_yfinance_prices(TICKERS, "2024-01-01", "2024-03-01", cache, download)
    assert cached and download.calls == 1  # a re-run does not download again
    pd.testing.assert_frame_equal(again, close, check_freq=False, check_names=False)
    assert cache.requests()["complete"].tolist() == [True]


def test_group_by_ticker_and_flat_single_ticker_shapes(tmp_path):
    close, _ = fetch_yfinance_prices(
        TICKERS, "a", "b", None, FakeDownload(yf_frame(group_by="ticker"))
    )
    assert list(close.columns) == TICKERS
    flat = yf_frame(["AAPL"]).droplevel(1, axis=1)  # older yfinance: one ticker, flat columns
    close, _ = fetch_yfinance_prices(["aapl"], "a", "b", None, FakeDownload(flat))
    assert list(close.columns) == ["AAPL"] and close["AAPL"].notna().all()


def test_retries_with_backoff_then_success(tmp_path):
    sleeps = []
    download = FakeDownload(yf_frame(), errors=[ConnectionError("reset"), RuntimeError("429")])
    close, _ = fetch_yfinance_prices(
        TICKERS, "a", "b", DownloadCache(tmp_path / "c.duckdb"), download, sleep=sleeps.append
    )
    assert download.calls == 3 and sleeps == [1.0, 2.0] and close.shape == (40, 3)


def test_partial_download_is_retried_then_refused_and_never_cached(tmp_path):
    sleeps = []
    cache = DownloadCache(tmp_path / "c.duckdb")
    download = FakeDownload(yf_frame(empty=("XOM",)))
    with pytest.raises(FetchError) as err:
        fetch_yfinance_prices(TICKERS, "a", "b", cache, download, attempts=3, sleep=sleeps.append)
    assert "failed after 3 attempts" in str(err.value) and "XOM" in str(err.value)
    assert sleeps == [1.0, 2.0] and download.calls == 3
    assert cache.requests().empty
    with duckdb.connect(str(tmp_path / "c.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from download_cache").fetchall()[0][0] == 0


def test_a_failed_write_leaves_no_complete_request(tmp_path, monkeypatch):
    cache = DownloadCache(tmp_path / "c.duckdb")
    bad = pd.DataFrame({"A": [1.0]}, index=pd.DatetimeIndex(["2024-01-02"]))
    cache.put("p", "r1", bad)
    original = duckdb.DuckDBPyConnection.register

    def boom(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(duckdb.DuckDBPyConnection, "register", boom)
    with pytest.raises(OSError):
        cache.put("p", "r2", bad)
    monkeypatch.setattr(duckdb.DuckDBPyConnection, "register", original)
    assert cache.get("p", "r2") is None and cache.get("p", "r1") is not None


def french_raw(n=40) -> dict:
    """``DataReader("F-F_Research_Data_Factors_daily", "famafrench")``: a dict of frames in %."""
    rng = np.random.default_rng(2)
    frame = pd.DataFrame(
        {"Mkt-RF": rng.normal(0.05, 1, n).round(2), "SMB": 0.1, "HML": -0.1, "RF": 0.02},
        index=pd.DatetimeIndex(DAYS[:n], name="Date"),
    )
    return {0: frame, "DESCR": "F-F Research Data Factors daily\n---\n..."}


def fred_raw(n=40, drop=()) -> pd.DataFrame:
    """``DataReader(["VIXCLS", "T10Y2Y"], "fred")``: index DATE, NaN on bond holidays."""
    days = pd.bdate_range(DAYS[0], periods=n, name="DATE")
    frame = pd.DataFrame(
        {"VIXCLS": np.linspace(13, 20, n), "T10Y2Y": np.linspace(-0.4, -0.3, n)}, index=days
    )
    frame.iloc[5, 1] = np.nan
    return frame.drop(columns=list(drop))


def test_french_factors_from_the_datareader_dict(tmp_path):
    cache = DownloadCache(tmp_path / "c.duckdb")
    reader = FakeDownload(french_raw())
    factors, cached = fetch_french_factors("2024-01-01", "2024-03-01", cache, reader)
    assert list(factors.columns) == ["mkt_rf", "smb", "hml", "rf"] and not cached
    assert factors["rf"].iloc[0] == pytest.approx(0.0002)
    _, cached = fetch_french_factors("2024-01-01", "2024-03-01", cache, reader)
    assert cached and reader.calls == 1
    with pytest.raises(FetchError, match="empty or without Mkt-RF"):
        fetch_french_factors("x", "y", None, FakeDownload({0: pd.DataFrame()}), attempts=1)


def test_fred_frame_and_a_missing_series(tmp_path):
    cache = DownloadCache(tmp_path / "c.duckdb")
    frame, _ = fetch_fred(["VIXCLS", "T10Y2Y"], "a", "b", cache, FakeDownload(fred_raw()))
    assert frame["T10Y2Y"].isna().sum() == 1 and frame.index.name == "date"
    with pytest.raises(FetchError, match="no values for T10Y2Y"):
        fetch_fred(
            ["VIXCLS", "T10Y2Y"],
            "a",
            "c",
            cache,
            FakeDownload(fred_raw(drop=["T10Y2Y"])),
            attempts=2,
            sleep=lambda s: None,
        )


def test_with_retries_says_what_failed():
    with pytest.raises(FetchError, match="thing: failed after 2 attempts: TimeoutError: slow"):
        with_retries(
            FakeDownload(None, [TimeoutError("slow")] * 2), "thing", 2, sleep=lambda s: None
        )


def test_yfinance_source_offline_end_to_end(tmp_path, monkeypatch):
    """The yfinance source with the libraries faked: observables from French + FRED, then a
    failing French download that falls back and says so."""
    import yfinance

    from vae_pipeline.settings import PipelineSettings
    from vae_pipeline.sources import make_source, yahoo_source

    monkeypatch.setattr(yfinance, "download", FakeDownload(yf_frame()))
    readers = {"famafrench": lambda *a: french_raw(), "fred": lambda *a: fred_raw()}
    monkeypatch.setattr(fetch, "_reader", lambda r: lambda name, kind, *a: readers[kind](name))
    universe = tmp_path / "universe.csv"
    pd.DataFrame({"ticker": TICKERS, "sector": ["IT", "IT", "Energy"]}).to_csv(
        universe, index=False
    )
    settings = PipelineSettings(
        source="yfinance",
        universe_path=universe,
        start="2024-01-03",
        db_path=tmp_path / "p.duckdb",
        fetch_retries=1,
    )
    yahoo_source._load.cache_clear()
    src = make_source(settings)
    src.end = "2024-03-01"
    assert src.returns(DAYS[0], DAYS[-1])["ticker"].nunique() == 3
    assert src.sectors().to_dict() == {"AAPL": "IT", "MSFT": "IT", "XOM": "Energy"}
    info = src.observables_report()
    assert "Fama-French" in info["observable_market"] and "VIXCLS" in info["observable_volatility"]
    assert len(DownloadCache(tmp_path / "p.duckdb").requests()) == 3  # prices, French, FRED

    def down(*a):
        raise ConnectionError("no route to host")

    readers["famafrench"] = down
    yahoo_source._load.cache_clear()
    src.end = "2024-03-02"  # a new request: prices and FRED are downloaded again, French fails
    info = src.observables_report()
    assert "equal-weight" in info["observable_market"]
    assert "no route to host" in info["observable_factors_download_failed"]
    yahoo_source._load.cache_clear()


# ------------------------------------------------------------------ live (opt-in: -m network)


def _online(host: str) -> bool:
    try:
        socket.create_connection((host, 443), timeout=3).close()
        return True
    except OSError:
        return False


@pytest.mark.network
def test_live_yfinance_download(tmp_path):
    if not _online("query1.finance.yahoo.com"):
        pytest.skip("no network")
    close, _ = fetch_yfinance_prices(
        ["AAPL", "MSFT"], "2024-01-02", "2024-02-01", DownloadCache(tmp_path / "c.duckdb")
    )
    assert close.shape[1] == 2 and len(close) > 15


@pytest.mark.network
def test_live_french_and_fred(tmp_path):
    if not (_online("mba.tuck.dartmouth.edu") and _online("fred.stlouisfed.org")):
        pytest.skip("no network")
    factors, _ = fetch_french_factors("2020-01-01", "2020-03-01")
    assert factors["mkt_rf"].abs().max() < 0.2
    fred, _ = fetch_fred(["VIXCLS", "T10Y2Y"], "2020-01-01", "2020-03-01")
    assert fred["VIXCLS"].max() > 20
