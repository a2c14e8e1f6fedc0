"""Which trading day a ``vae`` command materialises: ``--day`` checked, with a way out.

A day the pipeline cannot materialise is refused in one line that says why and what to
try instead: a weekend or an NYSE holiday (the trading day before), a day before the first
partition (``VAE_PIPELINE_START``), a day after the data ends (the source's last day, or the
last complete trading day).
"""

from __future__ import annotations

import holidays
import pandas as pd

from vae_pipeline.core.calendar import is_trading_day, latest_trading_day, shift_trading_days


class DayError(ValueError):
    """A ``--day`` that cannot be materialised; the message says what to use instead."""


def _try(day: pd.Timestamp) -> str:
    return f"try --day {day:%Y-%m-%d}"


def check_day(text: str | None, first: str, last: pd.Timestamp | None = None) -> pd.Timestamp:
    """``text`` as a trading day in [``first``, ``last``], or :class:`DayError`.

    ``last`` is the last day with data (default: the last complete trading day)."""
    complete = latest_trading_day()
    last = complete if last is None else min(pd.Timestamp(last), complete)
    if text is None:
        return last
    try:
        day = pd.Timestamp(text)
    except ValueError:
        raise DayError(f"--day {text!r} is not a date: use YYYY-MM-DD") from None
    if day.tzinfo is not None or day != day.normalize():
        raise DayError(f"--day {text!r} is not a date: use YYYY-MM-DD")
    if day > last and day.dayofweek < 5:  # a future weekday (a weekend gets its own line)
        raise DayError(_after(day, last, complete))
    if not is_trading_day(day):
        before = shift_trading_days(day, 0)
        if day.dayofweek >= 5:
            why = f"a {day:%A}"
        else:
            name = holidays.financial_holidays("NYSE", years=day.year).get(day.date())
            why = f"an NYSE holiday ({name})" if name else "an NYSE holiday"
        hint = _try(before) if pd.Timestamp(first) <= before <= last else _try(last)
        raise DayError(f"{day:%Y-%m-%d} is {why}, not a trading day: {hint}")
    if day < pd.Timestamp(first):
        raise DayError(
            f"{day:%Y-%m-%d} is before the first partition {first} (VAE_PIPELINE_START): "
            f"pick a later day, or set VAE_PIPELINE_START earlier"
        )
    if day > last:
        raise DayError(_after(day, last, complete))
    return day


def _after(day: pd.Timestamp, last: pd.Timestamp, complete: pd.Timestamp) -> str:
    what = (
        "the last complete trading day"
        if last == complete
        else "the last day of the data (the prices file ends there)"
    )
    return f"{day:%Y-%m-%d} is after {what}, {last:%Y-%m-%d}: {_try(last)}"
