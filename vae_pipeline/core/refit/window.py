"""The refit's inputs cut from stored data: the training window and its regime labels."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vae_pipeline.core.panel import window_panel


def training_window_returns(
    raw_returns: pd.DataFrame, scaler: pd.DataFrame, day, window: int
) -> pd.DataFrame:
    """The W-day window of the names the standardised panel admitted (its column order), so
    every model and estimator of the day sees the same names in the same order."""
    wide, problems = window_panel(raw_returns, day, window)
    if problems:
        raise ValueError("; ".join(problems))
    return wide[scaler["ticker"].tolist()]


def regime_labels(observables: pd.DataFrame, dates: pd.DatetimeIndex) -> np.ndarray:
    """The regime label of each day in ``dates``: the CVAE's conditions (raises when one is
    missing rather than guessing a regime)."""
    labels = observables.assign(date=pd.to_datetime(observables["date"])).set_index("date")[
        "regime"
    ]
    missing = dates.difference(labels.index)
    if len(missing):
        raise ValueError(
            f"no regime label for {len(missing)} window days (first {missing[0]:%Y-%m-%d})"
        )
    return labels.reindex(dates).to_numpy(dtype=int)
