"""The report asset: a self-contained HTML page per partition, checked in headless Chromium."""

import re
from pathlib import Path

import pytest
from dagster import AssetKey
from plotly.offline import get_plotlyjs

from vae_pipeline.pipeline.runner import report_path
from vae_pipeline_tests.browser import chromium_path
from vae_pipeline_tests.conftest import DAY

# Every figure the report draws for a scored partition of the synthetic source (the beta
# trade-off too once the on-demand beta_sweep is stored: see the last test).
FIGURES = [
    "training_loss",
    "latent_trajectories",
    "correlation_heatmap",
    "factor_recovery",
    "embedding_map",
    "realised_vol",
    "horse_race_bars",
    "anomaly_drawdowns",
    "cvae_regime_shift",
]
requires_chromium = pytest.mark.skipif(chromium_path() is None, reason="chromium not installed")


def _report_materialisation(results):
    events = [
        e.materialization
        for r in results
        for e in r.get_asset_materialization_events()
        if e.materialization.asset_key == AssetKey("report")
    ]
    assert len(events) == 1
    return events[0]


def test_report_is_materialised_beside_the_database_with_its_path_in_metadata(materialised):
    settings, _, _, results = materialised
    mat = _report_materialisation(results)
    path = Path(mat.metadata["report_path"].value)
    assert path == settings.storage.db_path.resolve().parent / "reports" / f"report_{DAY}.html"
    assert path.exists() and report_path(results) == path
    assert mat.partition == DAY
    # Figures as files, numbers as plottable floats, the scorecard as a table.
    for key in FIGURES:
        assert Path(mat.metadata[f"figure_{key}"].value).exists(), key
    assert isinstance(mat.metadata["realised_vol_vae"].value, float)
    assert isinstance(mat.metadata["vae_minus_ledoit_wolf"].value, float)
    rows = mat.metadata["scorecard"].value.records
    assert {r.data["estimator"] for r in rows} >= {"vae", "ledoit_wolf", "oracle"}


def test_report_is_self_contained(materialised):
    _, _, _, results = materialised
    page = report_path(results).read_text(encoding="utf-8")
    assert page.count(get_plotlyjs()[:2000]) == 1  # plotly.js inlined exactly once
    assert not re.search(r"<script[^>]+src=", page)  # nothing to fetch
    assert not re.search(r"<link[^>]+href=", page)
    for key in FIGURES:
        assert f'id="fig-{key}"' in page, key


def _figure_segments(dom: str) -> dict[str, str]:
    """The rendered DOM of each figure div (from its id to the next figure's)."""
    starts = [(m.start(), m.group(1)) for m in re.finditer(r'id="fig-([a-z_]+)"', dom)]
    ends = [s for s, _ in starts[1:]] + [len(dom)]
    return {key: dom[s:e] for (s, key), e in zip(starts, ends, strict=True)}


def _marks(segment: str) -> int:
    """Drawn data marks: line paths, markers, bars, heatmap images."""
    lines = len(re.findall(r'class="js-line"[^>]*\sd="M', segment))
    points = len(re.findall(r'class="point"[^>]*\sd="M', segment))
    bars = len(re.findall(r'<g class="point"><path d="M', segment))
    images = len(re.findall(r'<g class="hm"><image', segment))
    return lines + points + bars + images


@requires_chromium
def test_report_renders_every_figure_with_data_in_headless_chromium(materialised):
    from vae_pipeline_tests.browser import dump_dom

    _, _, _, results = materialised
    dom = dump_dom(report_path(results), offline=True)
    segments = _figure_segments(dom)
    assert set(segments) == set(FIGURES)
    for key, segment in segments.items():
        assert "main-svg" in segment, f"{key} was not rendered"
        assert _marks(segment) > 0, f"{key} rendered no data"


def test_report_trains_nothing_and_draws_a_stored_beta_sweep(materialised, monkeypatch):
    import vae_pipeline.core.training as training

    settings, defs, instance, _ = materialised
    job = defs.resolve_implicit_global_asset_job_def()
    sweep = job.execute_in_process(
        instance=instance, partition_key=DAY, asset_selection=[AssetKey("beta_sweep")]
    )
    assert sweep.success
    rows = sweep.asset_materializations_for_node("beta_sweep")
    assert len(rows) == 1

    def no_training(*args, **kwargs):
        raise AssertionError("the report must not train")

    monkeypatch.setattr(training, "train_vae", no_training)
    result = job.execute_in_process(
        instance=instance, partition_key=DAY, asset_selection=[AssetKey("report")]
    )
    assert result.success
    mat = result.asset_materializations_for_node("report")[0]
    assert Path(mat.metadata["figure_beta_tradeoff"].value).exists()


def test_report_shows_the_umap_map_beside_pca_with_both_silhouettes(materialised):
    _, _, _, results = materialised
    page = report_path(results).read_text(encoding="utf-8")
    assert "UMAP: sector silhouette" in page and "PCA: sector silhouette" in page
    assert 'id="table-sector_silhouette"' in page
    metadata = _report_materialisation(results).metadata
    assert {"silhouette_umap", "silhouette_pca"} <= set(metadata)
    assert all(-1 <= metadata[k].value <= 1 for k in ("silhouette_umap", "silhouette_pca"))
