"""README.md's result tables are the rendering of the committed benchmark JSON.

A number typed into a README table, or a JSON re-run without ``make readme``, fails here;
the renderer's formatting (signs, the * of an interval that excludes 0) is pinned on a tiny
hand-made JSON. No training: the JSON in ``benchmarks/results/`` is read, not recomputed.
"""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tables():
    spec = importlib.util.spec_from_file_location(
        "readme_tables", ROOT / "scripts" / "readme_tables.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_tables_equal_the_committed_json(tables):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = tables.render_blocks()
    # the synthetic runs are always committed; the real-data study may be absent
    assert {"seed42", "regime"} <= blocks.keys()
    for name, body in blocks.items():
        assert tables.marked(readme, name).group(2) == body + "\n", (
            f"README.md's results:{name} table is stale: run make readme"
        )
    assert tables.rewrite(readme, blocks) == readme


def test_every_table_has_its_markers_and_its_json_has_provenance(tables):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, (files, _) in tables.BLOCKS.items():
        tables.marked(readme, name)  # exactly one block, or SystemExit
        for f in files:
            path = tables.RESULTS / f
            if path.exists():
                prov = json.loads(path.read_text())["provenance"]
                assert prov["command"] and prov["git_commit"] and prov["date"]


def _row(name, vol, lw, pca):
    return {"estimator": name, "vol": vol, "vs_ledoit_wolf": lw, "vs_pca": pca}


def test_real_data_star_exactly_when_the_interval_excludes_zero(tables):
    study = {
        "horse_race": [
            _row("below", 0.1391, [-0.0099, -0.0151, -0.0057], [-0.0110, -0.0193, 0.0]),
            _row("ledoit_wolf", 0.1490, None, [-0.0011, -0.0095, 0.0067]),
            _row("above", 0.3545, [0.2055, 0.1697, 0.2471], [0.0001, 0.0, 0.0002]),
        ]
    }
    assert tables.render_real_data(study).splitlines() == [
        "| estimator | vol | vs Ledoit-Wolf | vs PCA |",
        "|---|---:|---:|---:|",
        "| below | 13.91 % | -0.99 [-1.51, -0.57] * | -1.10 [-1.93, +0.00] |",
        "| ledoit_wolf | 14.90 % | - | -0.11 [-0.95, +0.67] |",
        "| above | 35.45 % | +20.55 [+16.97, +24.71] * | +0.01 [+0.00, +0.02] |",
    ]


def test_seed42_table_sorts_by_walk_forward_and_labels_estimators(tables):
    def run(vols, gap):
        return {
            "config": {"latent": 3},
            "minvar": vols,
            "gap_to_oracle": gap,
            "intervals": {
                "oracle": {"vs_ledoit_wolf": [-0.005, -0.008, -0.002], "vs_pca": None},
                "vae": {"vs_ledoit_wolf": [0.001, -0.002, 0.004], "vs_pca": [0.0, -0.001, 0.001]},
            },
        }

    single = run({"vae": 0.1019, "oracle": 0.1003}, {})
    walk = run({"vae": 0.0999, "oracle": 0.1050}, {"vae": 0.0, "oracle": 0.0051})
    assert tables.render_seed42(single, walk).splitlines()[2:] == [
        "| **vae** (headline: linear VAE at its ELBO optimum, own k, closed form) | 10.19 % | 9.99 % "
        "| +0.00 "
        "| +0.10 [-0.20, +0.40] | +0.00 [-0.10, +0.10] |",
        "| oracle (true covariance) | 10.03 % | 10.50 % | +0.51 | -0.50 [-0.80, -0.20] | - |",
    ]


def test_rewrite_replaces_only_between_markers_and_check_reports_a_diff(tables, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "real_data_study.json").write_text(
        json.dumps({"horse_race": [_row("pca", 0.15, [0.001, -0.006, 0.009], None)]})
    )
    readme = tmp_path / "README.md"
    readme.write_text(
        "intro\n<!-- results:real_data -->\n| typed | 1 |\n<!-- /results:real_data -->\nafter\n",
        encoding="utf-8",
    )
    assert tables.main(["--check", "--readme", str(readme), "--results", str(results)]) == 1
    assert tables.main(["--readme", str(readme), "--results", str(results)]) == 0
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("intro\n<!-- results:real_data -->\n| estimator |")
    assert (
        "| pca | 15.00 % | +0.10 [-0.60, +0.90] | - |\n<!-- /results:real_data -->\nafter\n" in text
    )
    assert tables.main(["--check", "--readme", str(readme), "--results", str(results)]) == 0
