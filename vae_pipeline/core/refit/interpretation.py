"""The interpretation stage: what the window's latent factors track, beside linear baselines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from vae_pipeline.core.interpretation import baseline_latents, interpret
from vae_pipeline.core.refit.factors import as_latents
from vae_pipeline.core.results import LatentInterpretation
from vae_pipeline.core.training import TrainResult

# The linear baselines every VAE figure is shown beside (same window, same k).
BASELINE_METHODS = ("pca", "factor_analysis")
# The long rows of :attr:`Interpretation.rows` (the factor_interpretation asset's columns).
INTERPRETATION_COLUMNS = ["metric", "method", "latent", "target", "value"]


@dataclass(frozen=True)
class Interpretation:
    """What the latents mean.

    ``summary``: the typed figures (|corr| of each latent with each observable, the best per
    observable for the latents and each baseline, and the true-factor recovery R^2 per method
    when the truth was given, else None). ``rows``: the same as long rows (metric, method,
    latent, target, value): ``abs_corr`` per latent and observable, ``recovery_r2`` per
    method and true factor (latent ""). ``baselines``: the baseline latent series used.
    """

    summary: LatentInterpretation
    rows: pd.DataFrame
    baselines: dict[str, pd.DataFrame]

    @property
    def recovery_r2(self) -> pd.DataFrame | None:
        """Recovery R^2 as a (true factor x method) frame, None when the truth is unknown."""
        if self.summary.recovery_r2 is None:
            return None
        return pd.DataFrame(self.summary.recovery_r2, index=self.summary.factor_names)


def interpretation_rows(summary: LatentInterpretation, name: str = "vae") -> pd.DataFrame:
    """:class:`LatentInterpretation` as long rows (:data:`INTERPRETATION_COLUMNS`); ``name``
    is the method of the latents' own |corr| rows."""
    rows = [
        ("abs_corr", name, latent, target, value)
        for target, values in summary.abs_corr.items()
        for latent, value in zip(summary.latent_names, values, strict=True)
    ]
    for name, r2s in (summary.recovery_r2 or {}).items():
        rows += [
            ("recovery_r2", name, "", factor, r2)
            for factor, r2 in zip(summary.factor_names, r2s, strict=True)
        ]
    return pd.DataFrame(rows, columns=INTERPRETATION_COLUMNS)


def interpret_factors(
    latents: TrainResult | pd.DataFrame,
    window: pd.DataFrame,
    observables: pd.DataFrame,
    truth: pd.DataFrame | None = None,
    seed: int = 42,
    baselines: Sequence[str] = BASELINE_METHODS,
    name: str = "vae",
    conditions: np.ndarray | None = None,
) -> Interpretation:
    """|corr| of each latent with each observable, and how much of each true factor the
    latents span, with PCA(k) and factor analysis(k) of the same window beside them.

    ``latents``: a model (its posterior means over ``window``; a CVAE's given
    ``conditions``) or the T x k latent series itself (an asset's stored latents).
    ``window``: the raw returns the baselines are fitted on (k = the latents' count, seeded
    with ``seed``). ``observables``: numeric series by date (market, volatility, macro_slope,
    ...); their daily changes are taken on *this* frame's calendar before aligning, so pass
    the days you mean the first change to use. ``truth``: the true factor returns (synthetic
    data) -- recovery R^2 is computed only when it is given, else ``summary.recovery_r2`` is
    None. ``name`` labels the latents' method (``vae``, ``cvae``); ``baselines=()`` skips
    the baselines.
    """
    frame = as_latents(latents, window, conditions=conditions)
    k = frame.shape[1]
    fitted = {m: baseline_latents(window, k, method=m, seed=seed) for m in baselines}
    summary = interpret(
        frame,
        observables,
        truth.loc[frame.index] if truth is not None else None,
        baselines=fitted,
        name=name,
    )
    return Interpretation(
        summary=summary, rows=interpretation_rows(summary, name), baselines=fitted
    )
