"""Data-quality rules for a long returns frame (``date, ticker, ret``).

Each rule returns a list of human-readable problems (empty = passed), so the same rule
can raise in a library call, fail a Dagster asset check, or be printed by the CLI.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# A simple daily return below -100 % is impossible; above +100 % is a vendor error far
# more often than a real move in a diversified equity universe.
RETURN_BOUNDS = (-0.95, 1.0)


def _examples(frame: pd.DataFrame, limit: int = 3) -> str:
    rows = frame.head(limit)
    return ", ".join(f"{r.ticker} on {pd.Timestamp(r.date):%Y-%m-%d}" for r in rows.itertuples())


def finite_and_bounded(
    long: pd.DataFrame, bounds: tuple[float, float] = RETURN_BOUNDS
) -> list[str]:
    """Every return finite and inside ``bounds``."""
    ret = pd.to_numeric(long["ret"], errors="coerce").to_numpy(dtype=float)
    problems = []
    bad = ~np.isfinite(ret)
    if bad.any():
        problems.append(f"{int(bad.sum())} non-finite returns ({_examples(long[bad])})")
    out = np.isfinite(ret) & ((ret < bounds[0]) | (ret > bounds[1]))
    if out.any():
        problems.append(
            f"{int(out.sum())} returns outside [{bounds[0]:g}, {bounds[1]:g}] ({_examples(long[out])})"
        )
    return problems


def unique_keys(long: pd.DataFrame) -> list[str]:
    """No (date, ticker) pair appears twice."""
    dup = long.duplicated(["date", "ticker"], keep=False)
    if dup.any():
        return [f"{int(dup.sum())} rows share a (date, ticker) key ({_examples(long[dup])})"]
    return []


def enough_names(long: pd.DataFrame, min_names: int) -> list[str]:
    """Every date in the frame holds at least ``min_names`` tickers."""
    counts = long.groupby("date")["ticker"].nunique()
    thin = counts[counts < min_names]
    if len(thin):
        day = pd.Timestamp(thin.index[0])
        return [
            f"{len(thin)} days hold fewer than {min_names} names (e.g. {day:%Y-%m-%d}: {thin.iloc[0]})"
        ]
    return []


def window_complete(dates: pd.DatetimeIndex, expected: pd.DatetimeIndex) -> list[str]:
    """The window holds every expected trading day (it shrinks near the start and over gaps)."""
    missing = expected.difference(pd.DatetimeIndex(dates))
    if len(missing):
        return [
            f"window holds {len(expected) - len(missing)} of {len(expected)} trading days; "
            f"missing {len(missing)} (first {missing[0]:%Y-%m-%d}, last {missing[-1]:%Y-%m-%d})"
        ]
    return []


def check_returns(long: pd.DataFrame, min_names: int) -> dict[str, list[str]]:
    """All cross-section rules, by check name."""
    return {
        "finite_bounded": finite_and_bounded(long),
        "unique_date_ticker": unique_keys(long),
        "enough_names": enough_names(long, min_names),
    }
