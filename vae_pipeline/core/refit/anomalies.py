"""The anomaly stage: how badly the day's VAE reconstructs each stock, and the flags."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vae_pipeline.core.anomaly import flag_anomalies, market_residual_returns, reconstruction_error
from vae_pipeline.core.training import TrainResult


def model_errors(model: TrainResult, window: pd.DataFrame, market: pd.Series) -> pd.DataFrame:
    """Per-stock reconstruction error (standardised units, so a volatile name is not flagged
    for its vol alone) and trailing market-residual vol (the rival predictor of drawdowns)."""
    if model.standardiser.columns_ is not None:
        window = window[list(model.standardiser.columns_)]
    z = model.standardiser.transform(window)
    z_hat = model.standardiser.transform(model.reconstruct(window))
    errors = reconstruction_error(pd.DataFrame(z, columns=window.columns), z_hat)
    resid = market_residual_returns(window, market.reindex(window.index))
    return pd.DataFrame({"recon_error": errors, "idio_vol": resid.std() * np.sqrt(252.0)})


def flagged_errors(model: TrainResult, window: pd.DataFrame, market: pd.Series) -> pd.DataFrame:
    """:func:`model_errors` with the ``flagged`` column (the top reconstruction errors)."""
    report = model_errors(model, window, market)
    report["flagged"] = flag_anomalies(report["recon_error"])
    return report
