"""The factor stage: the VAE's latent series of the window, wide or long."""

from __future__ import annotations

import pandas as pd

from vae_pipeline.core.training import TrainResult


def latent_means(model: TrainResult, window: pd.DataFrame) -> pd.DataFrame:
    """T x k posterior-mean latents (z1..zk) over the window: the model's factor series."""
    means = model.encode_mean(window)
    return pd.DataFrame(
        means, index=window.index, columns=[f"z{i + 1}" for i in range(means.shape[1])]
    )


def latents_wide(latent_factors: pd.DataFrame) -> pd.DataFrame:
    """Stored long latents (obs_date, latent, value) -> T x k frame indexed by date."""
    wide = latent_factors.pivot(index="obs_date", columns="latent", values="value")
    wide.index = pd.DatetimeIndex(wide.index, name="date")
    return wide.sort_index()
