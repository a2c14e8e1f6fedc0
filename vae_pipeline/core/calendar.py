"""Trading-day calendar: weekdays less NYSE holidays (from the `holidays` package)."""

from __future__ import annotations

from functools import lru_cache

import holidays
import pandas as pd


@lru_cache(maxsize=64)
def _nyse_holidays(first_year: int, last_year: int) -> pd.DatetimeIndex:
    closed = holidays.financial_holidays("NYSE", years=range(first_year, last_year + 1))
    return pd.DatetimeIndex(sorted(closed))


def trading_days(start: str | pd.Timestamp, end: str | pd.Timestamp) -> pd.DatetimeIndex:
    """NYSE trading days in [start, end] (inclusive), named ``date``."""
    start, end = pd.Timestamp(start).normalize(), pd.Timestamp(end).normalize()
    days = pd.date_range(start, end, freq="D")  # vectorised; bdate_range steps in Python
    days = days[days.dayofweek < 5]
    if len(days) == 0:
        return pd.DatetimeIndex([], name="date")
    closed = _nyse_holidays(days[0].year, days[-1].year)
    return pd.DatetimeIndex(days[~days.isin(closed)], name="date")


def is_trading_day(day: str | pd.Timestamp) -> bool:
    """True when ``day`` is a weekday and not an NYSE holiday."""
    day = pd.Timestamp(day).normalize()
    return len(trading_days(day, day)) == 1


def shift_trading_days(day: str | pd.Timestamp, n: int) -> pd.Timestamp:
    """Move ``n`` trading days from ``day`` (back when ``n`` < 0).

    A non-trading ``day`` is first anchored to the last trading day on or before it
    (the as-of-close convention), so Saturday + 1 is Monday and Saturday + 0 is Friday.
    """
    day = pd.Timestamp(day).normalize()
    # 1.5 calendar days per trading day covers weekends and ~9 holidays a year.
    span = pd.Timedelta(days=int(abs(n) * 1.5) + 30)
    days = trading_days(day - (span if n < 0 else pd.Timedelta(days=10)), day + span)
    anchor = int(days.searchsorted(day, side="right")) - 1
    return days[anchor + n]


def latest_trading_day(now: str | pd.Timestamp | None = None) -> pd.Timestamp:
    """The last complete trading day: the last trading day strictly before ``now``'s date (UTC)."""
    now = pd.Timestamp.now("UTC") if now is None else pd.Timestamp(now)
    today = (now.tz_convert("UTC").tz_localize(None) if now.tzinfo else now).normalize()
    return shift_trading_days(today - pd.Timedelta(days=1), 0)
