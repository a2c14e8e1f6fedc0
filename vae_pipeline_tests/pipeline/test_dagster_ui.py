"""The Dagster UI a Dagster user expects: after a real run into a temporary DuckDB file and
DAGSTER_HOME, ``dagster-webserver`` serves that instance, and its GraphQL endpoint (the data of
every page) and a page rendered in headless Chromium show every asset with its kinds, owner,
tags, code version, checks (per day) and table metadata.

Slow (a whole partition, then a webserver that loads the code location: ~2-3 min on two
cores), so it runs with ``-m slow``; ``.ci/run`` runs it.
"""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance

from vae_pipeline.pipeline.assets.models import MODEL_KEYS, model_asset_name, model_code_version
from vae_pipeline.pipeline.definitions import build_definitions
from vae_pipeline.pipeline.runner import materialise_day
from vae_pipeline.store.factory import store_for
from vae_pipeline_tests.browser import Page, chromium_path
from vae_pipeline_tests.conftest import DAY, tiny_env, tiny_settings
from vae_pipeline_tests.dagster_ui import (
    asset_nodes,
    dismiss_community_prompt,
    graphql,
    lineage_url,
    pipeline_env,
    webserver,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(chromium_path() is None, reason="chromium not installed"),
]
# tiny_settings as the environment the webserver's code location reads
TINY_ENV = tiny_env()
MATERIALISATION = """
query ($name: [String!]!, $day: String!) {
  assetOrError(assetKey: {path: $name}) {
    ... on Asset {
      assetMaterializations(limit: 1, partitions: [$day]) {
        partition
        metadataEntries {
          label
          __typename
          ... on TableMetadataEntry { table { records schema { columns { name } } } }
          ... on TextMetadataEntry { text }
        }
      }
    }
  }
}
"""


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """(UI url, settings, definitions, the UI's asset nodes) after the day's run."""
    home = tmp_path_factory.mktemp("dagster_home")
    db = tmp_path_factory.mktemp("ui_db") / "ui.duckdb"
    settings = tiny_settings(db)
    defs = build_definitions(settings)
    instance = DagsterInstance.local_temp(str(home))
    try:
        results = materialise_day(defs, DAY, settings, instance=instance)
    finally:
        instance.dispose()
    assert all(r.success for r in results)
    env = pipeline_env(home, {**TINY_ENV, "VAE_PIPELINE_DB": str(db)})
    with webserver(env) as url:
        yield url, settings, defs, asset_nodes(url)


def _in_range(day: str, ranges: list[dict], status: str) -> bool:
    return any(r["startKey"] <= day <= r["endKey"] and r["status"] == status for r in ranges)


def test_catalog_shows_every_asset_with_kinds_owner_tags_and_checks(ui):
    _, settings, defs, nodes = ui
    graph = defs.resolve_asset_graph()
    assert set(nodes) == {k.to_user_string() for k in graph.get_all_asset_keys()}
    checks = {
        key.to_user_string(): {
            spec.name for spec in assets_def.check_specs if spec.asset_key == key
        }
        for assets_def in graph.assets_defs
        for key in assets_def.keys
    }
    for name, node in nodes.items():
        assert node["kinds"], f"{name} has no kinds"
        assert node["owners"] == [{"team": "quant-research"}], name
        tags = {t["key"]: t["value"] for t in node["tags"]}
        assert tags.get("layer") and tags.get("cadence"), (name, tags)
        # the description reads as a catalog entry: it names what the asset is, in prose
        assert node["description"] and node["description"][0].isupper(), name
        shown = {c["name"] for c in node["assetChecksOrError"]["checks"]}
        assert shown == checks[name], name
    # every asset stores through the configured backend, and says so
    stored = [n for n, node in nodes.items() if n != "report"]
    assert all("duckdb" in nodes[n]["kinds"] for n in stored)
    assert {"pytorch"} <= set(nodes["trained_vae"]["kinds"])
    assert {"html", "plotly"} <= set(nodes["report"]["kinds"])
    assert {"umap"} <= set(nodes["stock_embedding"]["kinds"])
    # the new checks are there, and the model assets carry their derived code version
    assert {"interpretation_valid"} <= checks["factor_interpretation"]
    assert checks["report"] == {"report_complete"}
    for key in MODEL_KEYS:
        assert nodes[model_asset_name(key)]["opVersion"] == model_code_version(key)


def test_every_gate_of_the_day_is_shown_per_partition(ui):
    _, _, _, nodes = ui
    seen = 0
    for name, node in nodes.items():
        if not node["isPartitioned"] or name == "beta_sweep":  # beta_sweep: on demand only
            continue
        for check in node["assetChecksOrError"]["checks"]:
            ranges = (check["partitionStatuses"] or {}).get("ranges")
            assert ranges is not None, f"{name}.{check['name']} is not partitioned"
            if check["blocking"]:
                assert _in_range(DAY, ranges, "SUCCEEDED"), (name, check["name"], ranges)
            seen += 1
    assert seen >= 20


def test_scorecard_and_horse_race_are_table_metadata(ui):
    url, _, _, _ = ui
    for asset, label in (("minvar_scorecard", "scorecard"), ("report", "scorecard")):
        data = graphql(url, MATERIALISATION, {"name": [asset], "day": DAY})
        (mat,) = data["assetOrError"]["assetMaterializations"]
        entries = {e["label"]: e for e in mat["metadataEntries"]}
        assert mat["partition"] == DAY
        assert entries[label]["__typename"] == "TableMetadataEntry", asset
        columns = [c["name"] for c in entries[label]["table"]["schema"]["columns"]]
        assert columns[:3] == ["estimator", "realised_vol", "predicted_vol"]
        assert len(entries[label]["table"]["records"]) >= 8  # one row per estimator
    race = graphql(
        url,
        '{ assetOrError(assetKey: {path: ["horse_race"]}) { ... on Asset {'
        " assetMaterializations(limit: 1) { metadataEntries { label __typename } } } } }",
    )
    (mat,) = race["assetOrError"]["assetMaterializations"]
    kinds = {e["label"]: e["__typename"] for e in mat["metadataEntries"]}
    assert kinds["horse_race"] == "TableMetadataEntry"


def test_the_stock_map_is_umap_with_its_pca_baseline(ui):
    url, settings, _, _ = ui
    rows = store_for(settings).read("stock_embedding")
    rows = rows[pd.to_datetime(rows["date"]) == pd.Timestamp(DAY)]
    assert set(rows["method"]) == {"umap", "pca"}
    assert (rows.groupby("method")["ticker"].nunique() == 20).all()
    data = graphql(url, MATERIALISATION, {"name": ["stock_embedding"], "day": DAY})
    (mat,) = data["assetOrError"]["assetMaterializations"]
    entries = {e["label"]: e for e in mat["metadataEntries"]}
    assert entries["method"]["text"] == "umap"
    assert {"silhouette_umap", "silhouette_pca", "embed_seconds"} <= set(entries)


def test_lineage_edges_are_the_definitions(ui):
    _, _, defs, nodes = ui
    graph = defs.resolve_asset_graph()
    for name, node in nodes.items():
        upstream = {"/".join(k["path"]) for k in node["dependencyKeys"]}
        expected = {k.to_user_string() for k in graph.get(AssetKey(name)).parent_keys}
        assert upstream == expected, name


def test_catalog_lineage_and_checks_render_in_chromium(ui):
    url, _, _, nodes = ui
    names = sorted(nodes)
    groups = sorted({node["groupName"] for node in nodes.values()})
    with Page(width=1800, height=2400) as page:
        page.goto(f"{url}/assets")  # the catalog: one row per asset with its group
        page.wait_for([*names, *groups], timeout=120)
        dismiss_community_prompt(page)
        # the global lineage with every group expanded: a virtualised canvas that draws only
        # the nodes in view and middle-truncates long names, so not every name is in the DOM
        page.goto(lineage_url(url, groups))
        text = page.wait_for([*groups, "raw_returns", "standardised_panel", "report"], 120)
        assert sum(name in text for name in names) >= 10
        # an asset's Checks tab: each gate with its latest result and the partition it judged
        page.goto(f"{url}/assets/factor_interpretation?view=checks")
        text = page.wait_for(["interpretation_valid", "history_complete", "Partition"], 120)
        assert "Succeeded" in text and DAY in text
        page.goto(f"{url}/assets/report?view=checks")
        page.wait_for(["report_complete", "Succeeded"], timeout=120)
