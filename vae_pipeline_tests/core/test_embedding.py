"""Stock map: loadings, 2-D embedding (UMAP by default, PCA), sector silhouette."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from vae_pipeline.core.embedding import embed, embed_2d, sector_silhouette, stock_loadings
from vae_pipeline.core.results import EmbeddingResult

T, PER_SECTOR, SECTORS = 300, 15, ["tech", "energy", "health"]


@pytest.fixture(scope="module")
def sector_world():
    """Market + one factor per sector; each stock loads on the market and its own sector."""
    rng = np.random.default_rng(42)
    dates = pd.bdate_range("2020-01-01", periods=T, name="date")
    k = 1 + len(SECTORS)
    latents = pd.DataFrame(
        rng.normal(0, 0.01, (T, k)), index=dates, columns=["market"] + [f"f_{s}" for s in SECTORS]
    )
    n = PER_SECTOR * len(SECTORS)
    tickers = [f"S{i:03d}" for i in range(n)]
    sector_of = np.repeat(np.arange(len(SECTORS)), PER_SECTOR)
    loadings = np.zeros((n, k))
    loadings[:, 0] = rng.normal(1.0, 0.1, n)
    loadings[np.arange(n), 1 + sector_of] = rng.normal(1.0, 0.1, n)
    alpha = rng.normal(0, 1e-4, n)
    returns = pd.DataFrame(alpha + latents.to_numpy() @ loadings.T, index=dates, columns=tickers)
    sectors = pd.Series(np.array(SECTORS)[sector_of], index=tickers, name="sector")
    return dict(rng=rng, latents=latents, returns=returns, loadings=loadings, sectors=sectors)


def test_loadings_exact_on_noiseless_data(sector_world):
    est = stock_loadings(sector_world["returns"], sector_world["latents"])
    assert est.shape == sector_world["loadings"].shape
    assert list(est.index) == list(sector_world["returns"].columns)
    assert list(est.columns) == list(sector_world["latents"].columns)
    np.testing.assert_allclose(est.to_numpy(), sector_world["loadings"], atol=1e-9)


def test_loadings_align_on_dates(sector_world):
    latents = sector_world["latents"].iloc[::-1]  # order must not matter
    est = stock_loadings(sector_world["returns"].iloc[10:], latents)
    np.testing.assert_allclose(est.to_numpy(), sector_world["loadings"], atol=1e-9)
    with pytest.raises(ValueError, match="too few"):
        stock_loadings(sector_world["returns"].iloc[:4], latents)


def test_pca_embedding_shape(sector_world):
    coords, used = embed_2d(
        stock_loadings(sector_world["returns"], sector_world["latents"]), method="pca"
    )
    assert used == "pca"
    assert coords.shape == (len(sector_world["sectors"]), 2)
    assert list(coords.columns) == ["x", "y"] and np.isfinite(coords.to_numpy()).all()


def test_pca_never_imports_umap():
    code = (
        "import sys, numpy as np, pandas as pd\n"
        "from vae_pipeline.core.embedding import embed_2d\n"
        "rng = np.random.default_rng(42)\n"
        "coords, used = embed_2d(pd.DataFrame(rng.normal(size=(20, 4))), method='pca')\n"
        "assert used == 'pca' and coords.shape == (20, 2)\n"
        "print('umap' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_auto_falls_back_to_pca_without_umap(sector_world, monkeypatch):
    monkeypatch.setitem(sys.modules, "umap", None)  # makes umap un-importable
    loadings = stock_loadings(sector_world["returns"], sector_world["latents"])
    _, used = embed_2d(loadings, method="auto")
    assert used == "pca"
    with pytest.raises(ImportError, match="umap-learn"):
        embed_2d(loadings, method="umap")
    with pytest.raises(ValueError):
        embed_2d(loadings, method="tsne")


# The UMAP path for real (numba compiles umap's kernels on the first fit of a process: ~6 s).
def test_umap_is_the_default_map_seeded_and_separates_sectors(sector_world):
    args = sector_world["returns"], sector_world["latents"], sector_world["sectors"]
    coords, result = embed(*args)  # the default method
    assert result.method == "umap" and coords.shape == (len(sector_world["sectors"]), 3)
    assert np.isfinite(coords[["x", "y"]].to_numpy()).all()
    # planted sectors: UMAP separates them, and better than PCA of the same loadings
    _, pca = embed(*args, method="pca")
    assert result.silhouette > 0.8 and result.silhouette > pca.silhouette
    # seeded: the same input draws the same map; another seed, another layout
    again, _ = embed(*args, seed=42)
    pd.testing.assert_frame_equal(coords, again)
    other, _ = embed(*args, seed=7)
    assert not np.allclose(coords[["x", "y"]], other[["x", "y"]])


def test_umap_maps_a_handful_of_names():
    """Fewer names than UMAP's neighbourhood (15): the graph shrinks to the names there are."""
    rng = np.random.default_rng(42)
    coords, used = embed_2d(pd.DataFrame(rng.normal(size=(6, 3))), method="umap")
    assert used == "umap" and coords.shape == (6, 2) and np.isfinite(coords.to_numpy()).all()
    # one latent (a model that kept a single factor): no PCA start, still a finite 2-D map
    coords, used = embed_2d(pd.DataFrame(rng.normal(size=(20, 1))), method="umap")
    assert used == "umap" and coords.shape == (20, 2) and np.isfinite(coords.to_numpy()).all()


def test_silhouette_separates_sectors(sector_world):
    coords, result = embed(
        sector_world["returns"], sector_world["latents"], sector_world["sectors"], method="pca"
    )
    assert isinstance(result, EmbeddingResult) and result.method == "pca"
    assert list(coords.columns) == ["x", "y", "sector"]
    assert (coords["sector"] == sector_world["sectors"]).all()
    assert result.silhouette > 0.7
    shuffled = pd.Series(
        sector_world["rng"].permutation(sector_world["sectors"].to_numpy()),
        index=sector_world["sectors"].index,
    )
    assert abs(sector_silhouette(coords, shuffled)) < 0.2


def test_silhouette_needs_two_sectors(sector_world):
    coords, _ = embed_2d(stock_loadings(sector_world["returns"], sector_world["latents"]), "pca")
    one = pd.Series("tech", index=coords.index)
    with pytest.raises(ValueError, match="n_sectors"):
        sector_silhouette(coords, one)
    with pytest.raises(ValueError, match="no sector"):
        sector_silhouette(coords, sector_world["sectors"].iloc[:10])


def test_embed_without_known_sectors_maps_names_and_skips_the_silhouette():
    from vae_pipeline.core.embedding import embed

    rng = np.random.default_rng(42)
    latents = pd.DataFrame(rng.normal(size=(120, 2)), columns=["z1", "z2"])
    returns = pd.DataFrame(
        latents.to_numpy() @ rng.normal(size=(2, 12)) + 0.1 * rng.normal(size=(120, 12)),
        columns=[f"S{i}" for i in range(12)],
    )
    unknown = pd.Series("Unknown", index=returns.columns)
    coords, result = embed(returns, latents, unknown, method="pca")
    assert coords.shape == (12, 3) and result.silhouette is None
    mixed = pd.Series(["A"] * 5 + ["B"] * 5 + ["Unknown"] * 2, index=returns.columns)
    _, result = embed(returns, latents, mixed, method="pca")
    assert result.silhouette is not None and -1 <= result.silhouette <= 1
