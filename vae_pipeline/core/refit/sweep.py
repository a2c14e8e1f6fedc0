"""The beta sweep: the fidelity-complexity trade-off of a window's VAE (it trains one short model
per beta, so it runs on demand as its own asset, never inside the daily refit or the report)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import pandas as pd

from vae_pipeline.core.training import TrainResult, beta_sweep

SWEEP_BETAS = (0.01, 0.1, 0.3, 1.0, 3.0, 10.0)
SWEEP_COLUMNS = ["beta", "recon", "kl", "active_dims"]


def sweep_betas(
    model: TrainResult,
    window: pd.DataFrame,
    betas: Sequence[float] = SWEEP_BETAS,
    progress: Callable[[int, int, float], None] | None = None,
) -> pd.DataFrame:
    """Refit ``model``'s config at each beta on its window (columns beta, recon, kl,
    active_dims); the model's own beta is always included."""
    betas = sorted({float(b) for b in betas} | {float(model.config.beta)})
    rows = []
    for i, beta in enumerate(betas):
        rows.append(beta_sweep(window, [beta], replace(model.config, device="cpu")))
        if progress is not None:
            progress(i + 1, len(betas), beta)
    return pd.concat(rows, ignore_index=True)[SWEEP_COLUMNS]
