"""Cleaning a daily panel of prices (or returns) for the messes real vendors ship.

Pure numpy / pandas. Input: a wide frame (rows = the trading days present in the data, sorted
and unique; columns = tickers; NaN = no value), already validated cell by cell by the loader
(prices positive and finite, returns finite and above -100 %). Output: cleaned simple returns
on the same grid (NaN = no return that day) and one row per intervention (``events``).

The rules, in order (each counted in ``events``; thresholds in :class:`CleaningConfig`):

1. **prices to returns**: ``r_t = P_t / P_prev - 1`` against the name's previous price. A
   name's first price (its listing) has no return. A return whose previous grid day had no
   price *spans a gap* (see 5).
2. **vendor glitches** (a split booked on the wrong day): a day whose price moves by a factor
   of at least ``split_move`` either way, reversed by the next day to within
   ``split_tolerance`` (e.g. -60 % then +150 %), is a glitch: the first day's return becomes
   0 and the next day's the net two-day move (``split_pair``). This is the one rule that looks
   ahead, by exactly one grid day.
3. **absurd single returns**: a move by more than a factor of ``max_move`` (default 4: below
   -75 % or above +300 %) that is not a reversed pair is a vendor error: set to 0 (``absurd``).
4. **stale prices**: a run of exactly-zero returns (an unchanged price) is suspicious from its
   ``stale_days``-th day on; those days, and the catch-up return that ends the run, are dropped
   (``stale``, ``gap_return_dropped``). The first ``stale_days - 1`` zeros are kept (they are
   indistinguishable from a quiet day when they are stored).
5. **coverage** (staggered listings, delistings, holes): a listed name with no value on a grid
   day has a *hole*. With ``min_coverage < 1`` a hole is filled with a zero return (the price
   carried forward: ``filled``) when the name's non-genuine days (no return, filled, stale or
   gap-spanning) over the trailing ``window`` grid days, this one included, number at most
   ``floor((1 - min_coverage) * window) - 1`` and the hole is at most ``max_fill_run`` days
   long; the return that ends a filled hole then spans it exactly. Otherwise the hole stays
   empty and the return ending it is dropped (``gap_return_dropped``). Since the pipeline's
   window universe is the names with a return on every window day (``core.panel``), this makes
   it "the names with at least ``min_coverage`` genuine days in the window". The default 1.0
   fills nothing: a name with any hole leaves every window that holds it. Names not yet listed
   are never filled, so a name enters the universe of the windows that start after its listing.
6. **winsorisation** to ``[winsor_low, winsor_high]`` (fixed bounds: ``winsorised``).

Determinism per partition: row t of the output depends on rows <= t + 1 of the input (rule 2
looks one grid day ahead; every other rule is trailing), so a day's cleaned cross-section never
changes once the next day is in the data, however much history is appended later. On the
data's last day rule 2 cannot look ahead; that day is final once the next day arrives.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

EVENT_COLUMNS = ["date", "ticker", "rule", "before", "after"]
RULES = ("split_pair", "absurd", "stale", "gap_return_dropped", "filled", "winsorised")


@dataclass(frozen=True)
class CleaningConfig:
    """Thresholds of the cleaning rules (module docstring); env vars in ``.env.example``."""

    window: int = 504
    min_coverage: float = 1.0
    max_fill_run: int = 5
    stale_days: int = 5
    split_move: float = 1.8
    split_tolerance: float = 0.1
    max_move: float = 4.0
    winsor_low: float = -0.75
    winsor_high: float = 1.0

    def __post_init__(self) -> None:
        problems = []
        if self.window < 1:
            problems.append(f"window must be >= 1, got {self.window}")
        if not 0.0 < self.min_coverage <= 1.0:
            problems.append(f"min_coverage must be in (0, 1], got {self.min_coverage}")
        if self.max_fill_run < 0:
            problems.append(f"max_fill_run must be >= 0, got {self.max_fill_run}")
        if self.stale_days < 0:
            problems.append(f"stale_days must be >= 0 (0 = off), got {self.stale_days}")
        if not self.split_move > 1.0:
            problems.append(f"split_move must be a price factor > 1, got {self.split_move}")
        if not self.split_tolerance >= 0.0:
            problems.append(f"split_tolerance must be >= 0, got {self.split_tolerance}")
        if not self.max_move > 1.0:
            problems.append(f"max_move must be a price factor > 1, got {self.max_move}")
        if not -1.0 < self.winsor_low < 0.0 < self.winsor_high:
            problems.append(
                f"winsor bounds must satisfy -1 < low < 0 < high, got "
                f"[{self.winsor_low}, {self.winsor_high}]"
            )
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def max_gap(self) -> int:
        """Most non-genuine days a name may have in the trailing window on a day it is filled."""
        return math.floor((1.0 - self.min_coverage) * self.window + 1e-9) - 1

    def describe(self) -> str:
        """The coverage rule in words (for asset metadata)."""
        if self.max_gap < 0 or self.max_fill_run == 0:
            return (
                f"min_coverage={self.min_coverage:g}: a window's universe is the names with a "
                f"return on every one of its {self.window} days; holes are never filled"
            )
        return (
            f"min_coverage={self.min_coverage:g} over W={self.window}: holes of a listed name "
            f"up to {self.max_fill_run} days are filled with 0 while it has at most "
            f"{self.max_gap} non-genuine days in the trailing window"
        )

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class CleanResult:
    """Cleaned wide returns (NaN = no return) and one row per intervention."""

    returns: pd.DataFrame
    events: pd.DataFrame
    config: CleaningConfig

    def counts(self, start=None, end=None) -> dict[str, int]:
        """Interventions per rule over [start, end] (all rules present, zeros included)."""
        ev = self.events
        if start is not None:
            ev = ev[ev["date"] >= pd.Timestamp(start)]
        if end is not None:
            ev = ev[ev["date"] <= pd.Timestamp(end)]
        found = ev["rule"].value_counts()
        return {rule: int(found.get(rule, 0)) for rule in RULES}


def clean_prices(prices: pd.DataFrame, config: CleaningConfig | None = None) -> CleanResult:
    """Clean a wide price panel (positive prices, NaN = none) into simple returns."""
    config = config or CleaningConfig()
    p = prices.to_numpy(dtype=np.float64)
    observed = np.isfinite(p)
    last = pd.DataFrame(p).ffill().to_numpy()
    prev = np.vstack([np.full((1, p.shape[1]), np.nan), last[:-1]])
    with np.errstate(invalid="ignore", divide="ignore"):
        ret = np.where(observed & np.isfinite(prev), p / prev - 1.0, np.nan)
    prev_observed = np.vstack([np.zeros((1, p.shape[1]), bool), observed[:-1]])
    spans_gap = np.isfinite(ret) & ~prev_observed
    return _clean(ret, observed, spans_gap, prices.index, prices.columns, config)


def clean_returns(returns: pd.DataFrame, config: CleaningConfig | None = None) -> CleanResult:
    """Clean a wide panel of simple returns (NaN = none); no return spans a gap here."""
    config = config or CleaningConfig()
    r = returns.to_numpy(dtype=np.float64).copy()
    observed = np.isfinite(r)
    return _clean(r, observed, np.zeros_like(observed), returns.index, returns.columns, config)


def _run_length(mask: np.ndarray) -> np.ndarray:
    """Length of the run of True ending at each row, per column (0 where False)."""
    out = np.zeros(mask.shape, dtype=np.int64)
    run = np.zeros(mask.shape[1], dtype=np.int64)
    for t in range(mask.shape[0]):
        run = np.where(mask[t], run + 1, 0)
        out[t] = run
    return out


def _trailing_sum(mask: np.ndarray, window: int) -> np.ndarray:
    """Sum of ``mask`` over the trailing ``window`` rows (this one included), per column."""
    cs = np.cumsum(mask.astype(np.int64), axis=0)
    lagged = np.vstack([np.zeros((window, mask.shape[1]), np.int64), cs[:-window]])[: len(cs)]
    return cs - lagged


def _clean(
    ret: np.ndarray,
    observed: np.ndarray,
    spans_gap: np.ndarray,
    dates: pd.Index,
    tickers: pd.Index,
    cfg: CleaningConfig,
) -> CleanResult:
    events: list[tuple[np.ndarray, np.ndarray, str, np.ndarray, np.ndarray]] = []

    def log(mask: np.ndarray, rule: str, before: np.ndarray, after: np.ndarray) -> None:
        rows, cols = np.nonzero(mask)
        if len(rows):
            events.append((rows, cols, rule, before[rows, cols], after[rows, cols]))

    raw = ret.copy()
    zero_run = _run_length(np.isfinite(raw) & (raw == 0.0))
    stale = (zero_run >= cfg.stale_days) if cfg.stale_days > 0 else np.zeros(raw.shape, bool)

    # 2. reversed pairs (one grid day of look-ahead), left to right so a pair's second day
    #    cannot open another pair.
    r = raw.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        lr = np.log1p(r)
    big = np.isfinite(lr) & (np.abs(lr) >= math.log(cfg.split_move))
    nxt = np.vstack([lr[1:], np.full((1, lr.shape[1]), np.nan)])
    reverses = big & np.isfinite(nxt) & (np.abs(lr + nxt) <= math.log1p(cfg.split_tolerance))
    pair_first = np.zeros(r.shape, bool)
    for t, j in zip(*np.nonzero(reverses), strict=True):
        if t > 0 and pair_first[t - 1, j]:
            continue
        pair_first[t, j] = True
        r[t + 1, j] = math.expm1(lr[t, j] + lr[t + 1, j])
        r[t, j] = 0.0
    pair_second = np.vstack([np.zeros((1, r.shape[1]), bool), pair_first[:-1]])
    log(pair_first | pair_second, "split_pair", raw, r)

    # 3. single absurd moves.
    with np.errstate(invalid="ignore"):
        absurd = np.isfinite(r) & (np.abs(np.log1p(r)) > math.log(cfg.max_move))
    before = r.copy()
    r[absurd] = 0.0
    log(absurd, "absurd", before, r)

    # 4. stale runs from their stale_days-th zero, and the catch-up return that ends them.
    before = r.copy()
    r[stale] = np.nan
    log(stale, "stale", before, r)
    after_stale = np.vstack([np.zeros((1, r.shape[1]), bool), stale[:-1]]) & ~stale
    after_stale &= np.isfinite(r)

    # 5. coverage: fill short holes of listed names while the trailing window allows it.
    listed_before = np.vstack(
        [np.zeros((1, r.shape[1]), bool), np.logical_or.accumulate(observed, axis=0)[:-1]]
    )
    hole = ~observed & listed_before
    genuine = np.isfinite(r) & ~spans_gap & ~after_stale
    missing = _trailing_sum(~genuine, cfg.window)
    fill = hole & (missing <= cfg.max_gap) & (_run_length(hole) <= cfg.max_fill_run)
    before = r.copy()
    r[fill] = 0.0
    log(fill, "filled", before, r)
    prev_filled = np.vstack([np.zeros((1, r.shape[1]), bool), fill[:-1]])
    drop = (spans_gap & ~prev_filled) | after_stale
    before = r.copy()
    r[drop] = np.nan
    log(drop & np.isfinite(before), "gap_return_dropped", before, r)

    # 6. winsorise.
    before = r.copy()
    with np.errstate(invalid="ignore"):
        r = np.where(np.isfinite(r), np.clip(r, cfg.winsor_low, cfg.winsor_high), np.nan)
        clipped = np.isfinite(r) & (r != before)
    log(clipped, "winsorised", before, r)

    out = pd.DataFrame(r, index=pd.DatetimeIndex(dates, name="date"), columns=tickers)
    out.columns.name = "ticker"
    return CleanResult(returns=out, events=_events_frame(events, dates, tickers), config=cfg)


def _events_frame(events, dates: pd.Index, tickers: pd.Index) -> pd.DataFrame:
    if not events:
        frame = pd.DataFrame({c: [] for c in EVENT_COLUMNS})
        frame["date"] = pd.to_datetime(frame["date"])
        return frame.astype({"ticker": str, "rule": str, "before": float, "after": float})
    dates, tickers = pd.DatetimeIndex(dates), np.asarray(tickers).astype(str)
    frames = [
        pd.DataFrame(
            {"date": dates[rows], "ticker": tickers[cols], "rule": rule, "before": b, "after": a}
        )
        for rows, cols, rule, b, a in events
    ]
    return pd.concat(frames, ignore_index=True).sort_values(["date", "ticker"], ignore_index=True)
