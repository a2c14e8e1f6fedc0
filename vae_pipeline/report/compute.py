"""The few derived quantities the figures need beyond the stored tables (pure: no Dagster).

- the beta sweep (a handful of short refits of the stored VAE's config on its window),
- the market-residual returns of the anomaly evaluation period,
- the CVAE's covariance in each regime.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from vae_pipeline.core.anomaly import market_residual_returns
from vae_pipeline.core.training import TrainResult, beta_sweep

SWEEP_BETAS = (0.01, 0.1, 0.3, 1.0, 3.0, 10.0)


def model_window(model: TrainResult, returns: pd.DataFrame, dates: pd.DatetimeIndex):
    """The model's training window: its own tickers (scaler order) on ``dates``."""
    tickers = list(model.standardiser.columns_ or returns.columns)
    return returns.reindex(index=dates, columns=tickers)


def run_beta_sweep(
    model: TrainResult,
    returns: pd.DataFrame,
    dates: pd.DatetimeIndex,
    betas=SWEEP_BETAS,
    progress=None,
) -> pd.DataFrame:
    """Refit the stored VAE's config at each beta on its own window (columns beta, recon, kl,
    active_dims); the configured beta is always included."""
    window = model_window(model, returns, dates)
    betas = sorted({float(b) for b in betas} | {float(model.config.beta)})
    rows = []
    for i, beta in enumerate(betas):
        rows.append(beta_sweep(window, [beta], replace(model.config, device="cpu")))
        if progress is not None:
            progress(i + 1, len(betas), beta)
    return pd.concat(rows, ignore_index=True)


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
