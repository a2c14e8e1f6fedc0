"""Reading the user's files: prices or returns, sectors, factors, macro series, a market index.

Every problem is refused with a :class:`DataFileError` whose message names the file and, for a
bad cell, the ticker and the date. Accepted layouts (CSV, CSV.gz or Parquet):

- **wide prices**: a ``date`` column, then one column per ticker of adjusted close prices
  (split- and dividend-adjusted; blank = no price that day);
- **long returns**: columns ``date, ticker, ret`` (simple daily returns in decimals);
- **long prices**: columns ``date, ticker`` and one of ``price, close, adj_close``.

Rows on weekends and exchange holidays are dropped (returns are measured between trading
days); identical duplicate rows are dropped, conflicting ones refused; dates are sorted.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vae_pipeline.core.calendar import trading_days

LAYOUTS = (
    "expected either wide prices (a 'date' column, then one column of adjusted close prices "
    "per ticker), long returns (columns date, ticker, ret) or long prices (columns date, "
    "ticker, price|close|adj_close)"
)
DATE_NAMES = ("date", "datetime", "timestamp")
TICKER_NAMES = ("ticker", "symbol")
RETURN_NAMES = ("ret", "return", "returns")
PRICE_NAMES = ("price", "close", "adj_close", "adj close", "adjclose")


class DataFileError(ValueError):
    """A user file that cannot be used as it is; the message says what and where."""


@dataclass
class PanelInput:
    """A validated wide panel: ``kind`` = "prices" or "returns"; ``notes`` = what was fixed."""

    kind: str
    wide: pd.DataFrame
    path: str
    notes: dict = field(default_factory=dict)


def read_table(path: str | Path, what: str = "file", **kwargs) -> pd.DataFrame:
    """A CSV (optionally compressed) or Parquet file as a frame, or a clear error."""
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"{what} {path}: no such file")
    if path.is_dir():
        raise DataFileError(f"{what} {path}: is a directory, expected a CSV or Parquet file")
    if path.stat().st_size == 0:
        raise DataFileError(f"{what} {path}: the file is empty")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise DataFileError(f"{what} {path}: the file is empty") from None
    except ImportError as exc:  # Parquet without pyarrow
        raise DataFileError(f"{what} {path}: {exc} (pip install pyarrow)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataFileError(f"{what} {path}: cannot be read ({exc})") from None
    header = _raw_header(path, frame, kwargs)
    frame.columns = [str(c).strip() for c in frame.columns]
    _refuse_duplicate_columns(header, path, what)
    if frame.empty:
        raise DataFileError(f"{what} {path}: holds no rows (only a header)")
    return frame


def _raw_header(path: Path, frame: pd.DataFrame, kwargs: dict) -> list[str]:
    """The column names as written (pandas renames a repeated CSV header ``A`` to ``A.1``)."""
    names = [str(c) for c in frame.columns]
    if path.suffix.lower() in (".parquet", ".pq"):
        return names
    try:
        row = pd.read_csv(
            path, header=None, nrows=1, dtype=str, keep_default_na=False,
            skiprows=kwargs.get("skiprows"),
        )  # fmt: skip
    except (OSError, ValueError):  # pandas' parser errors are ValueErrors
        return names
    raw = [str(c) for c in row.iloc[0]] if len(row) else names
    return raw if len(raw) == len(names) else names


def _refuse_duplicate_columns(header: list[str], path: Path, what: str) -> None:
    """A column name written twice (e.g. one ticker's prices in two columns) is ambiguous."""
    seen: dict[str, list[int]] = {}
    for i, name in enumerate(header):
        seen.setdefault(name.strip(), []).append(i + 1)
    repeated = {name: at for name, at in seen.items() if len(at) > 1 and name}
    if repeated:
        name, at = next(iter(repeated.items()))
        more = f" ({len(repeated)} names repeated)" if len(repeated) > 1 else ""
        raise DataFileError(
            f"{what} {path}: column {name!r} appears {len(at)} times (columns "
            f"{', '.join(map(str, at))}): one column per ticker, each name once{more}"
        )


def _find(columns, names) -> str | None:
    lowered = {c.lower(): c for c in columns}
    return next((lowered[n] for n in names if n in lowered), None)


def parse_dates(values: pd.Series, path, lenient: bool = False) -> pd.DatetimeIndex:
    """Dates as naive midnight timestamps; YYYYMMDD integers accepted (the French files' style).

    A value that is not a date is refused (``lenient``: becomes NaT, for footers of vendor files).
    """
    digits = values.astype(str).str.strip().str.fullmatch(r"\d{8}")
    if pd.api.types.is_integer_dtype(values) or digits.all() or (lenient and digits.mean() > 0.5):
        parsed = pd.to_datetime(values.astype(str).str.strip(), format="%Y%m%d", errors="coerce")
    elif pd.api.types.is_datetime64_any_dtype(values):
        parsed = pd.to_datetime(values)
    else:
        text = values.astype(str).str.strip()
        iso = text.str.match(r"\d{4}-\d{2}-\d{2}")
        if iso.all():  # the date as written (a time or a zone after it is ignored)
            parsed = pd.to_datetime(text.str.slice(0, 10), errors="coerce", format="%Y-%m-%d")
        else:
            parsed = _numeric_dates(text, values.name, path)
            if parsed is None:
                parsed = pd.to_datetime(text, errors="coerce", format="mixed")
    parsed = pd.DatetimeIndex(parsed)
    if parsed.tz is not None:
        parsed = parsed.tz_localize(None)
    bad = parsed.isna()
    if bad.any() and not lenient:
        row = int(np.flatnonzero(bad)[0])
        raise DataFileError(
            f"{path}: row {row + 2}: date {values.iloc[row]!r} is not a date (YYYY-MM-DD expected)"
        )
    return parsed.normalize()


# 28/12/2022, 12-28-22, 28.12.2022, optionally followed by a time (ignored)
_DAY_MONTH = re.compile(r"(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})(?:[ T].*)?")


def _numeric_dates(text: pd.Series, column, path) -> pd.Series | None:
    """All-numeric dates such as ``28/12/2022`` read in the one order the file proves:
    day-first when some first number is above 12, month-first when some second one is.
    Dates that fit both orders are refused (read month-first, a day-first file would
    become a scramble of wrong days). None: not this spelling (pandas reads it).

    Written by hand: pandas' ``dayfirst`` is only a hint, applied value by value, so one
    file can come back half day-first and half month-first."""
    parts = text.str.extract(_DAY_MONTH)
    if parts[0].isna().any() or parts[1].nunique() != 1 or parts[3].str.len().nunique() != 1:
        return None
    first, second = parts[0].astype(int), parts[2].astype(int)
    sep, year = parts[1].iloc[0], "%Y" if len(parts[3].iloc[0]) == 4 else "%y"
    day_first, month_first = f"%d{sep}%m{sep}{year}", f"%m{sep}%d{sep}{year}"
    if first.gt(12).any() and second.le(12).all():
        fmt = day_first
    elif second.gt(12).any() and first.le(12).all():
        fmt = month_first
    elif first.le(12).all() and second.le(12).all():
        yy = "YYYY" if year == "%Y" else "YY"
        raise DataFileError(
            f"{path}: column {column!r}: dates such as {text.iloc[0]!r} could be "
            f"DD{sep}MM{sep}{yy} (day first) or MM{sep}DD{sep}{yy} (month first), and no "
            "day above 12 says which: write them as YYYY-MM-DD"
        )
    else:
        return None  # both numbers above 12 somewhere: not dates, refused naming the row
    return pd.to_datetime(parts[0] + sep + parts[2] + sep + parts[3], format=fmt, errors="coerce")


def _numeric(frame: pd.DataFrame, dates: pd.DatetimeIndex, path, what: str) -> pd.DataFrame:
    """Columns to float; a non-numeric cell is refused naming the ticker and the date."""
    out = {}
    for col in frame.columns:
        values = frame[col]
        if values.dtype == bool:
            raise DataFileError(f"{path}: column {col!r} holds true/false values, not {what}s")
        number = pd.to_numeric(values, errors="coerce")
        if values.dtype == object:
            text = values.astype(str).str.strip()
            bad = number.isna() & values.notna() & (text != "")
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataFileError(
                    f"{path}: non-numeric {what} {_show(values.iloc[i])} for ticker {col} on "
                    f"{dates[i]:%Y-%m-%d}"
                )
        out[col] = number.astype(float).to_numpy()
    return pd.DataFrame(out, index=dates)


def _show(value) -> str:
    """A cell as the user wrote it: numbers plainly (-3.5, inf), text quoted ('abc')."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return f"{float(value):g}"
    return repr(str(value))


def _refuse_cells(wide: pd.DataFrame, mask: np.ndarray, path, message: str) -> None:
    if mask.any():
        i, j = (int(a[0]) for a in np.nonzero(mask))
        value = wide.iat[i, j]
        raise DataFileError(
            f"{path}: {message} {_show(value)} for ticker {wide.columns[j]} on {wide.index[i]:%Y-%m-%d}"
            f" ({int(mask.sum())} such cell{'s' if mask.sum() > 1 else ''})"
        )


def _dedupe(wide: pd.DataFrame, path, notes: dict) -> pd.DataFrame:
    """Drop identical duplicate dates; refuse conflicting ones naming the date and ticker."""
    dup = wide.index.duplicated(keep=False)
    if not dup.any():
        return wide
    for day, rows in wide[dup].groupby(level=0):
        first = rows.iloc[0]
        for k in range(1, len(rows)):
            differs = ~((rows.iloc[k] == first) | (rows.iloc[k].isna() & first.isna()))
            if differs.any():
                ticker = differs.index[np.flatnonzero(differs.to_numpy())[0]]
                raise DataFileError(
                    f"{path}: date {day:%Y-%m-%d} appears {len(rows)} times with different "
                    f"values (e.g. ticker {ticker}: {first[ticker]!r} vs {rows.iloc[k][ticker]!r})"
                )
    notes["duplicate_rows_dropped"] = int(dup.sum() - wide[dup].index.nunique())
    return wide[~wide.index.duplicated(keep="first")]


def to_grid(wide: pd.DataFrame, path, notes: dict) -> pd.DataFrame:
    """Sort, drop non-trading-day rows and rows without any value; note what was done."""
    if not wide.index.is_monotonic_increasing:
        notes["unsorted_dates_sorted"] = True
        wide = wide.sort_index(kind="stable")
    wide = _dedupe(wide, path, notes)
    open_days = trading_days(wide.index[0], wide.index[-1])
    closed = ~wide.index.isin(open_days)
    if closed.any():
        notes["non_trading_rows_dropped"] = int(closed.sum())
        notes["non_trading_example"] = f"{wide.index[closed][0]:%Y-%m-%d}"
        wide = wide[~closed]
    empty = wide.isna().all(axis=1)
    if empty.any():
        notes["empty_rows_dropped"] = int(empty.sum())
        wide = wide[~empty]
    no_data = [str(c) for c in wide.columns[wide.isna().all(axis=0)]]
    if no_data:
        notes["tickers_without_data"] = no_data[:20]
        wide = wide.drop(columns=no_data)
    if wide.empty or wide.shape[1] == 0:
        raise DataFileError(f"{path}: no value on any trading day")
    wide.index.name = "date"
    wide.columns.name = "ticker"
    return wide


def load_panel(path: str | Path) -> PanelInput:
    """Read and validate the user's prices or returns file (layouts in the module docstring)."""
    frame = read_table(path, "prices file (VAE_PIPELINE_PRICES)")
    date_col = _find(frame.columns, DATE_NAMES)
    if date_col is None:
        raise DataFileError(
            f"{path}: no 'date' column (columns: {', '.join(frame.columns[:6])}"
            f"{', ...' if len(frame.columns) > 6 else ''}); {LAYOUTS}"
        )
    ticker_col = _find(frame.columns, TICKER_NAMES)
    if ticker_col is not None:
        return _load_long(frame, date_col, ticker_col, path)
    tickers = [c for c in frame.columns if c != date_col]
    unnamed = [c for c in tickers if not c or re.fullmatch(r"Unnamed: \d+", c)]
    if not tickers or unnamed:
        raise DataFileError(
            f"{path}: {'no ticker columns' if not tickers else 'a column without a name'}; {LAYOUTS}"
        )
    if _find(tickers, RETURN_NAMES + PRICE_NAMES) is not None and len(tickers) <= 2:
        raise DataFileError(
            f"{path}: looks long (a {tickers} column) but has no 'ticker' column; {LAYOUTS}"
        )
    dates = parse_dates(frame[date_col], path)
    wide = _numeric(frame[tickers], dates, path, "price")
    values = wide.to_numpy()
    _refuse_cells(wide, np.isinf(values), path, "infinite price")
    _refuse_cells(wide, np.isfinite(values) & (values <= 0), path, "non-positive price")
    notes: dict = {"layout": "wide prices"}
    return PanelInput("prices", to_grid(wide, path, notes), str(path), notes)


def _load_long(frame: pd.DataFrame, date_col: str, ticker_col: str, path) -> PanelInput:
    value_col = _find(frame.columns, RETURN_NAMES)
    kind = "returns"
    if value_col is None:
        value_col, kind = _find(frame.columns, PRICE_NAMES), "prices"
    if value_col is None:
        raise DataFileError(
            f"{path}: has a ticker column but no 'ret' (or price) column; {LAYOUTS}"
        )
    dates = parse_dates(frame[date_col], path)
    tickers = frame[ticker_col].astype("string").str.strip()
    blank = tickers.isna() | (tickers == "")
    if blank.any():
        i = int(np.flatnonzero(blank.to_numpy())[0])
        raise DataFileError(f"{path}: row {i + 2} ({dates[i]:%Y-%m-%d}) has no ticker")
    what = "return" if kind == "returns" else "price"
    values = frame[value_col]
    number = pd.to_numeric(values, errors="coerce").astype(float)
    text = values.astype(str).str.strip()
    checks = [
        (number.isna() & values.notna() & (text != ""), f"non-numeric {what}"),
        (np.isinf(number), f"infinite {what}"),
        (
            (number <= -1.0) if kind == "returns" else (number <= 0),
            "return at or below -100 % (a non-positive price):"
            if kind == "returns"
            else "non-positive price",
        ),
    ]
    for bad, message in checks:
        bad = np.asarray(bad, dtype=bool)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataFileError(
                f"{path}: {message} {_show(values.iloc[i])} for ticker {tickers.iloc[i]} on "
                f"{dates[i]:%Y-%m-%d} ({int(bad.sum())} such row{'s' if bad.sum() > 1 else ''})"
            )
    long = pd.DataFrame({"date": dates, "ticker": tickers.to_numpy(), "value": number})
    notes: dict = {"layout": f"long {kind}"}
    dup = long.duplicated(["date", "ticker"], keep=False)
    if dup.any():
        groups = long[dup].groupby(["date", "ticker"])["value"]
        spread = groups.nunique(dropna=False)
        conflict = spread[spread > 1]
        if len(conflict):
            day, ticker = conflict.index[0]
            shown = long[dup & (long["date"] == day) & (long["ticker"] == ticker)]["value"]
            raise DataFileError(
                f"{path}: ticker {ticker} on {day:%Y-%m-%d} appears {len(shown)} times with "
                f"different values ({', '.join(f'{v:g}' for v in shown)})"
            )
        notes["duplicate_rows_dropped"] = int(dup.sum() - len(spread))
        long = long.drop_duplicates(["date", "ticker"])
    wide = long.pivot(index="date", columns="ticker", values="value")
    return PanelInput(kind, to_grid(wide, path, notes), str(path), notes)


# ---------------------------------------------------------------- observables and sectors


def load_sectors(path: str | Path) -> pd.Series:
    """ticker -> sector from a CSV with ``ticker`` and ``sector`` (or ``gics_sector``) columns."""
    frame = read_table(path, "sectors file (VAE_PIPELINE_SECTORS)")
    ticker = _find(frame.columns, TICKER_NAMES)
    sector = _find(frame.columns, ("sector", "gics_sector"))
    if ticker is None or sector is None:
        raise DataFileError(
            f"{path}: expected columns ticker and sector (or gics_sector); "
            f"found {', '.join(frame.columns[:8])}"
        )
    out = frame[[ticker, sector]].dropna()
    out = out.drop_duplicates(ticker, keep="first")
    return pd.Series(
        out[sector].astype(str).str.strip().to_numpy(),
        index=out[ticker].astype(str).str.strip(),
        name="sector",
    )


def _french_header_row(path: Path) -> int:
    """Lines before the header of a raw Kenneth French CSV (0 for a plain CSV)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        return 0
    import gzip

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    with opener(path, "rt", errors="replace") as handle:
        for i, line in enumerate(handle):
            if "mkt" in line.lower():
                return i
            if i > 50:
                break
    return 0


def load_factors(path: str | Path) -> tuple[pd.DataFrame, str]:
    """Daily French-style factors as decimals: ``mkt_rf`` [and ``rf``], indexed by date.

    Accepts the project's CSV (``date, mkt_rf, ..., rf`` in decimals) and the raw French
    library CSV (``,Mkt-RF,SMB,HML,RF`` in percent, YYYYMMDD dates, text before and after the
    table). Percent is detected from the scale (daily market sd above 0.2 means percent).
    """
    path = Path(path)
    if not path.exists():
        raise DataFileError(f"factors file (VAE_PIPELINE_FACTORS) {path}: no such file")
    frame = read_table(
        path, "factors file (VAE_PIPELINE_FACTORS)", skiprows=_french_header_row(path)
    )
    date_col = _find(frame.columns, DATE_NAMES) or frame.columns[0]
    mkt = _find(frame.columns, ("mkt_rf", "mkt-rf", "mktrf", "mkt"))
    if mkt is None:
        raise DataFileError(
            f"{path}: no mkt_rf (or Mkt-RF) column; found {', '.join(frame.columns)}"
        )
    rf = _find(frame.columns, ("rf",))
    dates = parse_dates(frame[date_col], path, lenient=True)
    cols = {"mkt_rf": pd.to_numeric(frame[mkt], errors="coerce")}
    if rf is not None:
        cols["rf"] = pd.to_numeric(frame[rf], errors="coerce")
    out = pd.DataFrame(cols).set_index(dates)
    out = out[out.index.notna() & out["mkt_rf"].notna()]
    out = out[~out.index.duplicated(keep="last")].sort_index()
    if out.empty:
        raise DataFileError(f"{path}: no dated mkt_rf values")
    units = "decimals"
    if out["mkt_rf"].std() > 0.2:
        out, units = out / 100.0, "percent (divided by 100)"
    out.index.name = "date"
    return out, units


VIX_NAMES = ("vix", "vix_close", "vixcls", "vix_level")
SLOPE_NAMES = ("t10y2y", "term_spread", "slope", "t10y3m")


def load_macro(path: str | Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Daily ``vix`` and ``macro_slope`` (a term spread) from a CSV; either may be absent.

    VIX column: one of vix, vix_close, VIXCLS; slope: the first of t10y2y, term_spread, slope,
    t10y3m. FRED's '.' for a missing value is read as blank. Returns the frame and the names of
    the columns used.
    """
    frame = read_table(path, "macro file (VAE_PIPELINE_MACRO)", na_values=["."])
    date_col = _find(frame.columns, DATE_NAMES) or frame.columns[0]
    vix, slope = _find(frame.columns, VIX_NAMES), _find(frame.columns, SLOPE_NAMES)
    if vix is None and slope is None:
        raise DataFileError(
            f"{path}: no VIX column ({', '.join(VIX_NAMES)}) and no term spread column "
            f"({', '.join(SLOPE_NAMES)}); found {', '.join(frame.columns)}"
        )
    dates = parse_dates(frame[date_col], path, lenient=True)
    out = pd.DataFrame(index=dates)
    used = {}
    if vix is not None:
        out["vix"] = pd.to_numeric(frame[vix], errors="coerce").to_numpy()
        used["volatility"] = vix
    if slope is not None:
        out["macro_slope"] = pd.to_numeric(frame[slope], errors="coerce").to_numpy()
        used["macro_slope"] = slope
    out = out[out.index.notna()]
    out = out[~out.index.duplicated(keep="last")].sort_index()
    out.index.name = "date"
    return out, used


def load_market_index(path: str | Path) -> pd.Series:
    """Daily simple returns of a market index from a CSV of ``date`` and one level column."""
    frame = read_table(path, "market index file (VAE_PIPELINE_MARKET)")
    date_col = _find(frame.columns, DATE_NAMES) or frame.columns[0]
    numeric = [c for c in frame.columns if c != date_col]
    if len(numeric) != 1:
        raise DataFileError(
            f"{path}: expected a date column and one index-level column; found {list(frame.columns)}"
        )
    dates = parse_dates(frame[date_col], path)
    level = _numeric(frame[numeric], dates, path, "index level")[numeric[0]]
    if (level <= 0).any() or np.isinf(level).any():
        raise DataFileError(f"{path}: index levels must be positive and finite")
    level = level[~level.index.duplicated(keep="last")].sort_index().dropna()
    return level.pct_change().dropna().rename("market")
