"""The embedding stage: a 2-D map of the stocks by their factor loadings, scored by sector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from vae_pipeline.core.embedding import UNKNOWN_SECTOR, embed
from vae_pipeline.core.refit.factors import as_latents
from vae_pipeline.core.results import EmbeddingResult
from vae_pipeline.core.training import TrainResult

EmbeddingMethod = Literal["auto", "umap", "pca"]


@dataclass(frozen=True)
class Embedding:
    """The stock map.

    ``coords`` (index: ticker, the window's names): ``x``, ``y`` and ``sector`` ("Unknown"
    where none is known). ``method``: the map actually drawn ("pca" or "umap").
    ``silhouette``: how well the map separates the known sectors (1 = tight, apart), None
    with fewer than two known sectors.
    """

    coords: pd.DataFrame
    method: Literal["umap", "pca"]
    silhouette: float | None

    @property
    def result(self) -> EmbeddingResult:
        return EmbeddingResult(method=self.method, silhouette=self.silhouette)


def embed_stocks(
    latents: TrainResult | pd.DataFrame,
    window: pd.DataFrame,
    sectors: pd.Series | None,
    method: EmbeddingMethod = "umap",
    seed: int = 42,
) -> Embedding:
    """Each stock's OLS loadings on the latent series over ``window``, standardised and mapped
    to 2-D, with the sector silhouette: do stocks the factors see alike share a sector?

    ``latents``: a model (its posterior means over ``window``) or a T x k latent series
    (an asset's stored latents, a PCA / factor-analysis baseline's scores, a model's means
    over a wider window than the names mapped). ``window``: the returns of the names to map.
    ``sectors``: ticker -> sector (None or missing = "Unknown", mapped but left out of the
    silhouette). ``method``: "umap" (the default), "pca" (never imports umap), or "auto"
    (UMAP when umap-learn is installed, else PCA).
    """
    frame = as_latents(latents, window)
    known = (
        sectors.reindex(window.columns)
        if sectors is not None
        else pd.Series(np.nan, index=window.columns, dtype=object)
    )
    coords, result = embed(window, frame, known, method=method, seed=seed)
    coords["sector"] = known.fillna(UNKNOWN_SECTOR).to_numpy()
    return Embedding(
        coords=coords.rename_axis("ticker"), method=result.method, silhouette=result.silhouette
    )


def stock_maps(
    latents: TrainResult | pd.DataFrame,
    window: pd.DataFrame,
    sectors: pd.Series | None,
    method: EmbeddingMethod = "umap",
    seed: int = 42,
) -> list[Embedding]:
    """The stock map drawn by ``method`` and, when that is not PCA, the PCA map of the same
    loadings as its baseline (milliseconds): ``[map]`` or ``[umap_map, pca_map]``.

    The ``stock_embedding`` asset stores both (its ``method`` column tells them apart), so the
    report can set the two sector silhouettes side by side from what is stored.
    """
    frame = as_latents(latents, window)  # a model is encoded once for both maps
    found = embed_stocks(frame, window, sectors, method=method, seed=seed)
    if found.method == "pca":
        return [found]
    return [found, embed_stocks(frame, window, sectors, method="pca", seed=seed)]
