"""Features: the standardised training window."""

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, asset

from vae_pipeline.core.panel import window_panel
from vae_pipeline.core.standardise import Standardiser
from vae_pipeline.pipeline.assets.common import (
    DUCKDB_POOL,
    PARTITION_COLUMN,
    non_trading_day_results,
    partition_day,
    window_deps,
    with_date,
)
from vae_pipeline.pipeline.checks import gate, gate_specs
from vae_pipeline.pipeline.partitions import training_window
from vae_pipeline.pipeline.resources import TrainingResource
from vae_pipeline.pipeline.window_store import WindowStore

SCALER_COLUMNS = ["ticker", "mean", "scale", "n_obs", "z_mean", "z_std"]
# z-scores of the fitted window itself must be (0, 1) up to float32 rounding.
MOMENT_TOLERANCE = 1e-3


def build(partitions, settings) -> list:
    @asset(
        partitions_def=partitions,
        group_name="features",
        metadata=PARTITION_COLUMN,
        deps=window_deps(training_window(settings), "raw_returns"),
        check_specs=gate_specs(
            "standardised_panel", ["window_complete", "enough_names", "standardised_moments"]
        ),
        output_required=False,
        pool=DUCKDB_POOL,
    )
    def standardised_panel(
        context: AssetExecutionContext, training: TrainingResource, store: WindowStore
    ):
        """The training window [d-W+1, d] z-scored per stock: one row per name with its scaler.

        Stored as the scaler (mean, scale) and the z-scores' own moments, O(N) per day; the
        z-panel itself is the raw window transformed by this scaler. Refused when the window
        is short (near the start of history, or over missing days) or too few names remain.
        """
        if (skipped := non_trading_day_results(context)) is not None:
            yield from skipped
            return
        day = partition_day(context)
        wide, window_problems = window_panel(
            store.returns(day, settings.evaluation.window), day, settings.evaluation.window
        )
        problems = {
            "window_complete": window_problems,
            "enough_names": [],
            "standardised_moments": [],
        }
        if wide.shape[1] < max(settings.data.min_names, training.latent_dim + 1):
            problems["enough_names"].append(
                f"{wide.shape[1]} names with a full window; need at least "
                f"{max(settings.data.min_names, training.latent_dim + 1)} (latent_dim={training.latent_dim})"
            )
        scaler_rows = pd.DataFrame(columns=SCALER_COLUMNS)
        if not window_problems and wide.shape[1] > 0:
            try:
                scaler = Standardiser().fit(wide)
            except ValueError as exc:  # e.g. a constant (zero-variance) name
                problems["standardised_moments"].append(str(exc))
            else:
                z = scaler.transform(wide)
                z_mean, z_std = z.mean(axis=0), z.std(axis=0)
                worst = float(max(np.abs(z_mean).max(), np.abs(z_std - 1).max()))
                if worst > MOMENT_TOLERANCE:
                    problems["standardised_moments"].append(f"z-score moments off by {worst:.2e}")
                scaler_rows = pd.DataFrame(
                    {
                        "ticker": wide.columns.astype(str),
                        "mean": scaler.mean_,
                        "scale": scaler.scale_,
                        "n_obs": len(wide),
                        "z_mean": z_mean.astype(float),
                        "z_std": z_std.astype(float),
                    }
                )
        metadata = {
            "names": int(wide.shape[1]),
            "days": int(len(wide)),
            "first_day": str(wide.index.min().date()) if len(wide) else "none",
        }
        yield from gate(context, with_date(scaler_rows, day, SCALER_COLUMNS), problems, metadata)

    return [standardised_panel]
