"""Market observables on real data, with named fallbacks when a series is unavailable.

- **market**: the Fama-French market return (``mkt_rf + rf``; ``mkt_rf`` alone without ``rf``),
  else a market index from the user's file, else the equal-weight return of the cleaned panel.
  Days the chosen series does not cover take the equal-weight return (counted).
- **volatility**: VIX (forward-filled over at most 7 calendar days, e.g. a CBOE holiday), else
  the trailing 21-day realised vol of the market return in VIX points (annualised, x 100).
- **macro_slope**: a term spread (e.g. FRED T10Y2Y), forward-filled over bond-market holidays
  and past the end of the series; before its first value, or when there is none, a constant 0
  (a constant series carries no information: the interpretation skips it).
- **regime**: 1 (contraction) when the trailing 63-day cumulative log market return is
  negative, else 0 (expansion): the synthetic panel's rule, known at the close.

Every value of day d uses data up to d only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vae_pipeline.sources.base import OBSERVABLE_COLUMNS

REGIME_WINDOW = 63
REALISED_VOL_DAYS = 21
VIX_FFILL = pd.Timedelta(days=7)


def regime_from_market(market: pd.Series, window: int = REGIME_WINDOW) -> pd.Series:
    """1 where the trailing ``window``-day cumulative log return is negative (prefix-stable)."""
    csum = np.cumsum(np.log1p(market.to_numpy(dtype=float)))
    lagged = np.concatenate([np.zeros(window), csum[:-window]])[: len(csum)]
    return pd.Series((csum - lagged < 0).astype(np.int64), index=market.index, name="regime")


def realised_vol_index(market: pd.Series, days: int = REALISED_VOL_DAYS) -> pd.Series:
    """Trailing realised vol of ``market`` in VIX points (ddof 0, so day one is finite: 0)."""
    return market.rolling(days, min_periods=1).std(ddof=0) * np.sqrt(252.0) * 100.0


def build_observables(
    dates: pd.DatetimeIndex,
    equal_weight: pd.Series,
    factors: pd.DataFrame | None = None,
    index_returns: pd.Series | None = None,
    macro: pd.DataFrame | None = None,
    labels: dict[str, str] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """The observables frame (``OBSERVABLE_COLUMNS``) on ``dates`` and what each series is."""
    labels = labels or {}
    info: dict = {}
    ew = equal_weight.reindex(dates)
    if factors is not None and "mkt_rf" in factors:
        series = factors["mkt_rf"] + (factors["rf"] if "rf" in factors else 0.0)
        what = "mkt_rf + rf" if "rf" in factors else "mkt_rf"
        info["market"] = f"Fama-French {what} ({labels.get('factors', 'factors')})"
    elif index_returns is not None:
        series = index_returns
        info["market"] = f"index returns ({labels.get('market', 'market index file')})"
    else:
        series = None
        info["market"] = "fallback: equal-weight return of the cleaned panel"
    market = ew.copy() if series is None else series.reindex(dates)
    gaps = market.isna()
    if series is not None and gaps.any():
        info["market_fallback_days"] = int(gaps.sum())
    market = market.fillna(ew).fillna(0.0)

    vix = None
    if macro is not None and "vix" in macro and macro["vix"].notna().any():
        vix = macro["vix"].dropna().reindex(dates, method="ffill", tolerance=VIX_FFILL)
        info["volatility"] = f"VIX ({labels.get('volatility', 'vix')})"
    realised = realised_vol_index(market)
    if vix is None:
        info["volatility"] = (
            f"fallback: trailing {REALISED_VOL_DAYS}-day realised vol of the market (VIX points)"
        )
        volatility = realised
    else:
        if vix.isna().any():
            info["volatility_fallback_days"] = int(vix.isna().sum())
        volatility = vix.fillna(realised)

    slope = None
    if macro is not None and "macro_slope" in macro and macro["macro_slope"].notna().any():
        raw = macro["macro_slope"].dropna()
        slope = raw.reindex(raw.index.union(dates)).ffill().reindex(dates)
        info["macro_slope"] = f"term spread ({labels.get('macro_slope', 'slope')})"
        if slope.isna().any():
            info["macro_slope_missing_days"] = int(slope.isna().sum())
        slope = slope.fillna(0.0)
    if slope is None:
        info["macro_slope"] = "unavailable: constant 0 (no term spread given)"
        slope = pd.Series(0.0, index=dates)

    frame = pd.DataFrame(
        {
            "date": dates,
            "market": market.to_numpy(dtype=float),
            "volatility": volatility.to_numpy(dtype=float),
            "macro_slope": slope.to_numpy(dtype=float),
            "regime": regime_from_market(market).to_numpy(),
        }
    )
    return frame[OBSERVABLE_COLUMNS], info
