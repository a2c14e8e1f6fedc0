"""Long <-> wide returns frames, and cutting a training window of exactly W trading days."""

from __future__ import annotations

import pandas as pd

from vae_pipeline.core.calendar import shift_trading_days, trading_days
from vae_pipeline.core.validation import window_complete

RETURNS_COLUMNS = ["date", "ticker", "ret"]


def expected_window(end: pd.Timestamp, window: int) -> pd.DatetimeIndex:
    """The W trading days ending at ``end`` (inclusive)."""
    return trading_days(shift_trading_days(end, -(window - 1)), end)


def window_panel(
    long: pd.DataFrame, end: pd.Timestamp, window: int
) -> tuple[pd.DataFrame, list[str]]:
    """Wide T x N returns of the W trading days ending at ``end``, and the problems found.

    The universe is the names with a return on every day of the window; names with
    gaps are dropped (the count is reported as a problem only if none remain).
    """
    expected = expected_window(pd.Timestamp(end), window)
    if long.empty:
        return pd.DataFrame(index=expected), [
            f"no returns stored for the window ending {end:%Y-%m-%d}"
        ]
    wide = to_wide(long)
    wide = wide.loc[(wide.index >= expected[0]) & (wide.index <= expected[-1])]
    problems = window_complete(wide.index, expected)
    wide = wide.dropna(axis=1, how="any")
    if wide.shape[1] == 0 and not problems:
        problems.append("no name has a full window")
    return wide, problems


def to_long(wide: pd.DataFrame) -> pd.DataFrame:
    """Wide (date x ticker) returns to the long ``date, ticker, ret`` layout, NaNs dropped."""
    long = wide.rename_axis(index="date", columns="ticker").stack().rename("ret").reset_index()
    long["date"] = pd.to_datetime(long["date"])
    long["ticker"] = long["ticker"].astype(str)
    return long[RETURNS_COLUMNS].sort_values(["date", "ticker"], ignore_index=True)


def to_wide(long: pd.DataFrame) -> pd.DataFrame:
    """Long ``date, ticker, ret`` to a wide date x ticker frame (sorted both ways); a frame
    that is already wide (date-indexed, as the IO manager serves return windows) passes through."""
    if isinstance(long.index, pd.DatetimeIndex):
        return long.sort_index().sort_index(axis=1)
    wide = long.pivot(index="date", columns="ticker", values="ret")
    wide.index = pd.DatetimeIndex(wide.index, name="date")
    return wide.sort_index().sort_index(axis=1)
