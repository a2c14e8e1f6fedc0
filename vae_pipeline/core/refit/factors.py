"""The factor stage: the VAE's latent series of the window, wide or long."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vae_pipeline.core.training import TrainResult


def latent_means(
    model: TrainResult, window: pd.DataFrame, conditions: np.ndarray | None = None
) -> pd.DataFrame:
    """T x k posterior-mean latents (z1..zk) over the window: the model's factor series
    (a CVAE's given each day's ``conditions``, the regime labels it was trained on)."""
    means = model.encode_mean(window, conditions=conditions)
    return pd.DataFrame(
        means, index=window.index, columns=[f"z{i + 1}" for i in range(means.shape[1])]
    )


def latents_wide(latent_factors: pd.DataFrame) -> pd.DataFrame:
    """Stored long latents (obs_date, latent, value) -> T x k frame indexed by date."""
    wide = latent_factors.pivot(index="obs_date", columns="latent", values="value")
    wide.index = pd.DatetimeIndex(wide.index, name="date")
    return wide.sort_index()


def as_latents(
    latents: TrainResult | pd.DataFrame,
    window: pd.DataFrame,
    conditions: np.ndarray | None = None,
) -> pd.DataFrame:
    """The window's latent series: a model's :func:`latent_means`, or a T x k frame given
    directly (an asset's stored latents, a baseline's scores) passed through unchanged."""
    if isinstance(latents, TrainResult):
        return latent_means(latents, window, conditions=conditions)
    if conditions is not None:
        raise ValueError("conditions only apply when a model is given")
    return latents
