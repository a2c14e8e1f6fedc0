"""Roll daily min-var scorecards up into a walk-forward horse race."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

HORSE_RACE_COLUMNS = [
    "estimator",
    "n_scored",
    "mean_vol",
    "rms_vol",
    "gap_to_oracle",
    "diff_vs_ledoit_wolf",
    "diff_vs_ledoit_wolf_lo",
    "diff_vs_ledoit_wolf_hi",
    "diff_vs_pca",
    "diff_vs_pca_lo",
    "diff_vs_pca_hi",
]


def _paired_interval(diff: pd.Series, horizon: int) -> tuple[float, float, float]:
    """Mean of a paired difference and its 95 % t-interval on non-overlapping periods.

    Daily partitions score overlapping H-day holding periods, so neighbouring differences
    are strongly correlated; keeping every H-th one leaves (nearly) independent periods.
    """
    diff = diff.dropna().sort_index()
    mean = float(diff.mean()) if len(diff) else float("nan")
    thinned = diff.iloc[::horizon].to_numpy()
    if len(thinned) < 3 or np.allclose(thinned, thinned[0]):
        return mean, float("nan"), float("nan")
    ci = stats.ttest_1samp(thinned, 0.0).confidence_interval(0.95)
    return mean, float(ci.low), float(ci.high)


def summarise_scorecards(scorecards: pd.DataFrame, horizon: int) -> pd.DataFrame:
    """One row per estimator over all scored partitions (realised vols as decimals)."""
    if scorecards.empty:
        return pd.DataFrame(columns=HORSE_RACE_COLUMNS)
    vols = scorecards.pivot_table(index="date", columns="estimator", values="realised_vol")
    rows = []
    for name in vols.columns:
        v = vols[name].dropna()
        row = {
            "estimator": name,
            "n_scored": len(v),
            "mean_vol": float(v.mean()),
            "rms_vol": float(np.sqrt((v**2).mean())),
        }
        row["gap_to_oracle"] = (
            row["rms_vol"] - float(np.sqrt((vols["oracle"] ** 2).mean()))
            if "oracle" in vols
            else float("nan")
        )
        for base, key in (("ledoit_wolf", "diff_vs_ledoit_wolf"), ("pca", "diff_vs_pca")):
            if base in vols:
                row[key], row[f"{key}_lo"], row[f"{key}_hi"] = _paired_interval(
                    vols[name] - vols[base], horizon
                )
            else:
                row[key] = row[f"{key}_lo"] = row[f"{key}_hi"] = float("nan")
        rows.append(row)
    return pd.DataFrame(rows, columns=HORSE_RACE_COLUMNS).sort_values("rms_vol", ignore_index=True)
