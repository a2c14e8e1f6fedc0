"""``vae study PRICES`` through typer's CliRunner on a tiny synthetic price file: one JSON
object on stdout, the markdown table, one-line errors, and the same numbers as the core harness
(``core.study.run_study``) called directly."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from vae_pipeline.cli import app
from vae_pipeline.cli.study import load_study_inputs
from vae_pipeline.core.study import StudyConfig, markdown_table, run_study

runner = CliRunner()
CHEAP = "sample,pca,factor_analysis,vae_reference"
OPTIONS = ["--window", "100", "--rebalance", "21", "--latent", "2", "--epochs", "5",
           "--n-samples", "100", "--n-boot", "50", "--estimators", CHEAP]  # fmt: skip
RACED = {"ledoit_wolf", "nonlinear_shrinkage", "pca", "sample", "factor_analysis",
         "vae_reference"}  # fmt: skip


@pytest.fixture(scope="module")
def prices(tmp_path_factory):
    """20 names x 300 business days of seeded one-factor prices (seed 42), wide CSV."""
    rng = np.random.default_rng(42)
    days = pd.bdate_range("2022-01-03", periods=320)
    days = days[~days.strftime("%m-%d").isin(["01-17", "02-21", "05-30", "07-04", "09-05",
                                               "11-24", "12-26", "06-20", "04-15"])][:300]  # fmt: skip
    market = rng.normal(0.0003, 0.01, (300, 1))
    rets = 0.0002 + market * rng.uniform(0.5, 1.5, 20) + rng.normal(0, 0.012, (300, 20))
    wide = pd.DataFrame(100 * np.cumprod(1 + rets, axis=0),
                        columns=[f"S{j:02d}" for j in range(20)]).round(4)  # fmt: skip
    wide.insert(0, "date", days.strftime("%Y-%m-%d"))
    path = tmp_path_factory.mktemp("study") / "prices.csv"
    wide.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def ran(prices, tmp_path_factory):
    md = tmp_path_factory.mktemp("md") / "table.md"
    result = runner.invoke(app, ["study", str(prices), *OPTIONS, "--json", "--markdown", str(md)])
    assert result.exit_code == 0, result.output
    return result, md


def test_json_is_one_object_with_every_estimator_vol_and_intervals(ran):
    result, _ = ran
    d = json.loads(result.stdout)  # stdout holds the JSON object and nothing else
    rows = {r["estimator"]: r for r in d["horse_race"]}
    assert set(rows) == RACED
    assert d["n_names"] == 20 and d["n_rebalances"] >= 8
    vols = [r["vol"] for r in d["horse_race"]]
    assert vols == sorted(vols) and all(0 < v < 1 for v in vols)
    for name, r in rows.items():
        for base in ("ledoit_wolf", "nonlinear_shrinkage", "pca"):
            ci = r[f"vs_{base}"]
            if name == base:
                assert ci is None
            else:
                diff, lo, hi = ci
                assert lo <= diff <= hi


def test_markdown_writes_the_table(ran):
    result, md = ran
    lines = md.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "| estimator | vol | vs Ledoit-Wolf | vs nonlinear shrinkage | vs PCA |"
    assert len(lines) == 2 + len(RACED)
    assert lines == markdown_table(json.loads(result.stdout)).splitlines()


def test_numbers_equal_the_core_study(ran, prices):
    d = json.loads(ran[0].stdout)
    inputs = load_study_inputs(prices)
    config = StudyConfig(window=100, rebalance=21, latent=2, epochs=5, n_samples=100, n_boot=50,
                         estimators=tuple(CHEAP.split(",")))  # fmt: skip
    direct = run_study(inputs.returns, inputs.observables, config).result
    assert direct["horse_race"] == d["horse_race"]
    assert direct["per_regime"] == d["per_regime"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--estimators", "pca,bogus"], "unknown estimator(s) bogus"),
        (["--estimators", "oracle"], "unknown estimator(s) oracle"),
        (["--window", "400"], "too long"),
    ],
)
def test_bad_input_exits_2_with_one_line(prices, args, needle):
    result = runner.invoke(app, ["study", str(prices), "--json", *args])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert needle in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_file_exits_2_with_one_line(tmp_path):
    result = runner.invoke(app, ["study", str(tmp_path / "nope.csv"), "--json"])
    assert result.exit_code == 2
    assert result.stdout == "" and "no such file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
