"""What the Dagster catalog shows of each asset: kinds (by storage backend), owner, tags, the
derived code version of the models, partitioned gates, and the rules of the checks on
``factor_interpretation`` and ``report``."""

from __future__ import annotations

import inspect

import pandas as pd
import pytest

from vae_pipeline.pipeline.assets.common import OWNERS
from vae_pipeline.pipeline.assets.models import (
    MODEL_KEYS,
    MODEL_SOURCES,
    model_asset_name,
    model_code_version,
)
from vae_pipeline.pipeline.checks import interpretation_problems, report_problems
from vae_pipeline.pipeline.definitions import build_definitions
from vae_pipeline.report.build import REQUIRED_SECTIONS
from vae_pipeline_tests.conftest import DAY, tiny_settings


def _nodes(settings):
    graph = build_definitions(settings).resolve_asset_graph()
    return {key.to_user_string(): graph.get(key) for key in graph.get_all_asset_keys()}, graph


@pytest.mark.parametrize("io", ["duckdb", "parquet"])
def test_every_asset_has_kinds_owner_and_tags(tmp_path, io):
    settings = tiny_settings(tmp_path / "c.duckdb", io=io, parquet_root=str(tmp_path / "pq"))
    nodes, _ = _nodes(settings)
    for name, node in nodes.items():
        assert node.kinds, name
        assert list(node.owners) == OWNERS, name
        assert {"layer", "cadence"} <= set(node.tags), name
        if name != "report":  # the report is an HTML file, not a table
            assert io in node.kinds and ({"duckdb", "parquet"} - {io}).isdisjoint(node.kinds)
    assert nodes["horse_race"].tags["cadence"] == "rollup"
    assert nodes["beta_sweep"].tags["cadence"] == "on-demand"


def test_model_code_version_is_derived_from_the_fit_code_and_the_registry_key(monkeypatch):
    versions = {model_asset_name(key): model_code_version(key) for key in MODEL_KEYS}
    assert len(set(versions.values())) == len(MODEL_KEYS)  # each model its own version
    assert all(len(v) == 12 and int(v, 16) >= 0 for v in versions.values())
    assert versions == {model_asset_name(k): model_code_version(k) for k in MODEL_KEYS}
    # an edit to the training loop changes every model's version
    real = inspect.getsource

    def edited(obj):
        text = real(obj)
        return text + "\n# edited" if obj.__name__ == "vae_pipeline.core.training" else text

    monkeypatch.setattr(inspect, "getsource", edited)
    changed = {model_asset_name(key): model_code_version(key) for key in MODEL_KEYS}
    assert all(changed[name] != versions[name] for name in versions)
    assert "vae_pipeline.core.training" in MODEL_SOURCES


def test_model_assets_carry_their_code_version_and_nothing_else_does(tmp_path):
    nodes, _ = _nodes(tiny_settings(tmp_path / "c.duckdb"))
    for key in MODEL_KEYS:
        assert nodes[model_asset_name(key)].code_version == model_code_version(key)
    assert nodes["raw_returns"].code_version is None


def test_gates_of_partitioned_assets_are_partitioned(tmp_path):
    _, graph = _nodes(tiny_settings(tmp_path / "c.duckdb"))
    specs = [(a, s) for a in graph.assets_defs for s in a.check_specs]
    assert len(specs) >= 30
    for assets_def, spec in specs:
        assert spec.partitions_def == assets_def.partitions_def, spec.key


def _interpretation(latents=("z1", "z2"), targets=("market", "volatility")) -> pd.DataFrame:
    rows = [("abs_corr", "vae", z, t, 0.5) for z in latents for t in targets]
    rows += [("recovery_r2", m, "", "f1", 0.9) for m in ("vae", "pca")]
    return pd.DataFrame(rows, columns=["metric", "method", "latent", "target", "value"])


def test_interpretation_rules():
    good = _interpretation()
    assert interpretation_problems(good, ["z1", "z2"]) == []
    high = good.assign(value=good["value"].where(good["metric"] != "recovery_r2", 1.2))
    assert "outside [0, 1]" in interpretation_problems(high, ["z1", "z2"])[0]
    assert "non-finite" in interpretation_problems(good.assign(value=float("nan")), ["z1", "z2"])[0]
    (missing,) = interpretation_problems(good, ["z1", "z2", "z3"])
    assert "z3" in missing
    twice = pd.concat([good, good.iloc[[0]]], ignore_index=True)
    assert "one |corr| row per (latent, target)" in interpretation_problems(twice, ["z1", "z2"])[0]
    gap = good.drop(index=1)  # z1 lost a target
    assert interpretation_problems(gap, ["z1", "z2"])


def test_report_rules(tmp_path):
    page = tmp_path / "report.html"
    assert "not written" in report_problems(page, ["a"], [])[0]
    page.write_text("")
    assert "empty" in report_problems(page, ["a"], [])[0]
    sections = "".join(f'<section id="{k}"><div id="fig-{k}"></div></section>' for k in "ab")
    page.write_text(f"<html>{sections}</html>")
    assert report_problems(page, ["a", "b"], ["a"]) == []
    assert report_problems(page, ["a", "b", "c"], []) == ["section 'c' missing from the page"]
    assert report_problems(page, ["a"], ["a", "d"]) == ["section 'd' not drawn"]
    page.write_text(f"<html>{sections}")
    assert "truncated" in report_problems(page, ["a"], [])[0]
    assert "embedding_map" in REQUIRED_SECTIONS and "beta_tradeoff" not in REQUIRED_SECTIONS


def test_the_day_runs_the_new_gates_per_partition(materialised):
    _, _, _, results = materialised
    evaluations = {
        (e.asset_key.to_user_string(), e.check_name): e
        for r in results
        for e in r.get_asset_check_evaluations()
        if e.partition == DAY
    }
    for key in [("factor_interpretation", "interpretation_valid"), ("report", "report_complete")]:
        assert evaluations[key].passed, key
    # every gate of the day is recorded against the day's partition
    assert len(evaluations) >= 30
