"""Stock map: each stock's loadings on the latent factors, embedded in 2-D and scored by sector.

UMAP (umap-learn, a core dependency) draws the map by default; PCA from scikit-learn is the
other option (``VAE_PIPELINE_EMBEDDING=pca``) and the baseline the map is compared with.

Cost (measured on the 2-core dev machine, N = 60 / 500 names, k = 4): ``import umap`` takes
~2.6 s (17 s the very first time, while numba writes its on-disk cache), and the first fit in a
process ~5.7 s of numba JIT compilation (umap compiles its graph and layout kernels on first
call and does not cache them on disk); every later fit ~0.03 s / ~0.35 s. So umap is imported
only inside :func:`embed_2d`'s UMAP branch (a PCA map never imports it), and the fit is kept
cheap: the exact k-nearest-neighbour graph comes from scikit-learn (``precomputed_knn``, which
spares the parallel numba kNN kernel, half of the JIT time), the layout starts from PCA (a
stable, deterministic start) and runs :data:`UMAP_EPOCHS` epochs instead of umap's 500 for
small data. ``random_state`` fixes the map for a given input.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.preprocessing import StandardScaler

from vae_pipeline.core.results import EmbeddingResult


def stock_loadings(returns: pd.DataFrame, latents: pd.DataFrame) -> pd.DataFrame:
    """N x k loadings: OLS (with intercept) of each stock's returns on the latent means.

    One least-squares solve for all stocks (the design matrix is shared). Aligned on dates.
    """
    common = returns.index.intersection(latents.index)
    r = returns.loc[common].to_numpy(dtype=float)
    z = latents.loc[common].to_numpy(dtype=float)
    if not (np.isfinite(r).all() and np.isfinite(z).all()):
        raise ValueError("returns / latents contain NaN or inf")
    if len(common) <= z.shape[1] + 1:
        raise ValueError(f"{len(common)} common dates is too few for {z.shape[1]} latents")
    design = np.column_stack([np.ones(len(common)), z])
    coef, *_ = np.linalg.lstsq(design, r, rcond=None)  # (k + 1) x N
    return pd.DataFrame(coef[1:].T, index=returns.columns, columns=latents.columns)


# Layout epochs of a UMAP fit. umap-learn runs 500 below 10,000 points and 200 above. From a
# PCA start 200 keep the sector silhouette within 0.04 of 500's (0.90 vs 0.94 on planted-sector
# panels of 45 and 500 names) at 40 % of the time (0.19 s vs 0.47 s at N = 500), and a
# 250-day backfill fits one map per day.
UMAP_EPOCHS = 200
UMAP_NEIGHBOURS = 15


def _umap_available() -> bool:
    # find_spec looks for the package without importing it (importing umap pulls in numba).
    return importlib.util.find_spec("umap") is not None


def umap_2d(x: np.ndarray, seed: int = 42, n_epochs: int = UMAP_EPOCHS) -> np.ndarray:
    """UMAP of the rows of ``x`` to 2-D: exact kNN graph (scikit-learn), PCA start, fixed seed."""
    import warnings

    from sklearn.neighbors import NearestNeighbors

    try:
        import umap  # slow to import (numba): kept local, a PCA map never pays for it
    except ImportError as exc:
        raise ImportError(
            "method='umap' needs umap-learn (a core dependency): pip install umap-learn"
        ) from exc
    k = min(UMAP_NEIGHBOURS, x.shape[0] - 1)
    dist, idx = NearestNeighbors(n_neighbors=k).fit(x).kneighbors(x)
    reducer = umap.UMAP(
        n_components=2,
        n_neighbors=k,
        # PCA start needs two loading columns; one latent has a 1-D layout only (seeded random)
        init="pca" if x.shape[1] >= 2 else "random",
        n_epochs=n_epochs,
        random_state=seed,
        n_jobs=1,
        precomputed_knn=(idx, dist.astype(np.float32)),
    )
    with warnings.catch_warnings():
        # a precomputed graph has no search index, so umap warns that ``transform`` (mapping
        # new points) is unavailable: the map is refit each day, transform is never used
        warnings.filterwarnings("ignore", message="precomputed_knn", category=UserWarning)
        return reducer.fit_transform(x)


def embed_2d(
    loadings: pd.DataFrame, method: str = "umap", seed: int = 42
) -> tuple[pd.DataFrame, str]:
    """2-D coordinates (columns x, y; index = stocks) of the standardised loadings.

    ``method``: "umap" (default), "pca", or "auto" (UMAP when umap-learn is installed, else
    PCA). "pca" never imports umap. Returns ``(coords, method_used)``.
    """
    if method not in ("auto", "umap", "pca"):
        raise ValueError(f"method must be 'auto', 'umap' or 'pca', got {method!r}")
    x = loadings.to_numpy(dtype=float)
    if not np.isfinite(x).all():
        raise ValueError("loadings contain NaN or inf")
    if x.shape[0] < 3:
        raise ValueError(f"need at least 3 stocks to embed, got {x.shape[0]}")
    # Standardise so a high-variance factor (the market) does not dominate the geometry.
    x = StandardScaler().fit_transform(x)
    used = method if method != "auto" else ("umap" if _umap_available() else "pca")
    if used == "umap":
        xy = umap_2d(x, seed=seed)
    else:
        n_comp = min(2, x.shape[1])
        xy = PCA(n_components=n_comp, random_state=seed).fit_transform(x)
        if n_comp == 1:  # one latent: the map is a line
            xy = np.column_stack([xy, np.zeros(len(xy))])
    coords = pd.DataFrame(np.asarray(xy, dtype=float), index=loadings.index, columns=["x", "y"])
    return coords, used


UNKNOWN_SECTOR = "Unknown"


def sector_silhouette(coords: pd.DataFrame, sectors: pd.Series) -> float:
    """Silhouette score of the sector labels in the 2-D map (1 = tight, separated clusters)."""
    labels = sectors.reindex(coords.index)
    if labels.isna().any():
        raise ValueError("some stocks in coords have no sector")
    n_labels = labels.nunique()
    if not 2 <= n_labels <= len(labels) - 1:
        raise ValueError(
            f"silhouette needs 2 <= n_sectors <= n_stocks - 1; got {n_labels} sectors, "
            f"{len(labels)} stocks"
        )
    return float(silhouette_score(coords[["x", "y"]].to_numpy(), labels.to_numpy()))


def embed(
    returns: pd.DataFrame,
    latents: pd.DataFrame,
    sectors: pd.Series,
    method: str = "umap",
    seed: int = 42,
) -> tuple[pd.DataFrame, EmbeddingResult]:
    """Loadings -> 2-D map -> sector silhouette. Coords carry a ``sector`` column for plotting.

    Names without a known sector (missing, or "Unknown") are mapped but left out of the
    silhouette; with fewer than two known sectors the silhouette is None.
    """
    coords, used = embed_2d(stock_loadings(returns, latents), method=method, seed=seed)
    known = sectors.reindex(coords.index)
    known = known[known.notna() & (known != UNKNOWN_SECTOR)]
    score = (
        sector_silhouette(coords.loc[known.index], known)
        if 2 <= known.nunique() <= len(known) - 1
        else None
    )
    coords = coords.assign(sector=sectors.reindex(coords.index).to_numpy())
    return coords, EmbeddingResult(method=used, silhouette=score)
