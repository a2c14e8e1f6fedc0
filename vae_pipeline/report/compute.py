"""The few derived quantities the figures need beyond the stored tables (pure: no Dagster).

- the market-residual returns of the anomaly evaluation period,
- the CVAE's covariance in each regime.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from vae_pipeline.core.anomaly import market_residual_returns
from vae_pipeline.core.training import TrainResult


def model_window(model: TrainResult, returns: pd.DataFrame, dates: pd.DatetimeIndex):
    """The model's training window: its own tickers (scaler order) on ``dates``."""
    tickers = list(model.standardiser.columns_ or returns.columns)
    return returns.reindex(index=dates, columns=tickers)


def anomaly_residuals(
    returns: pd.DataFrame,
    market: pd.Series,
    decision_date: pd.Timestamp,
    day: pd.Timestamp,
    window: int,
) -> pd.DataFrame:
    """Market-residual returns over (decision, day], betas fitted on the decision's window and
    the holding period together (the anomaly asset's own convention)."""
    past = returns.loc[returns.index <= decision_date].tail(window)
    held = returns.loc[(returns.index > decision_date) & (returns.index <= day)]
    span = pd.concat([past, held]).dropna(axis=1)
    resid = market_residual_returns(span, market.reindex(span.index))
    return resid.loc[held.index]


def cvae_regime_covariances(
    model: TrainResult, returns: pd.DataFrame, regimes: pd.Series, seed: int = 42
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """The CVAE's covariance (return units) conditioned on expansion (0) and contraction (1)."""
    from vae_pipeline.core.covariance import CVAECovariance

    window = model_window(model, returns, pd.DatetimeIndex(regimes.index))
    labels = regimes.to_numpy(dtype=int)
    covs = [
        CVAECovariance.from_trained(
            model, window, y=labels, condition=c, n_samples=2000, seed=seed
        ).covariance_
        for c in (0, 1)
    ]
    return covs[0], covs[1], list(window.columns)
