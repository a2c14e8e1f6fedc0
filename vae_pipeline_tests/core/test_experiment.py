"""End-to-end experiment (core.experiment): JSON contract, determinism, market recovery, CVAE path.

Fast tests use a tiny seed-42 panel (20 names, 300 days, 30 epochs). The issue-2 targets on the
full 60-name panel are ``slow`` tests (``pytest -m slow``).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from vae_pipeline.core.covariance import model_keys
from vae_pipeline.core.experiment import (
    ExperimentConfig,
    condition_labels,
    run_experiment,
)
from vae_pipeline.core.refit import experiment_estimators
from vae_pipeline.core.synthetic import generate_panel

TINY = dict(n_names=20, n_days=300, epochs=30, seed=42)
REQUIRED_MINVAR = {
    "oracle",
    "sample",
    "ledoit_wolf",
    "nonlinear_shrinkage",
    "pca",
    "factor_analysis",
    "vae",
}
TIMING_KEYS = ("seconds", "fit_seconds")


@pytest.fixture(scope="module")
def tiny() -> dict:
    return run_experiment(**TINY).to_json_dict()


def _without_timings(d: dict) -> dict:
    d = json.loads(json.dumps(d))
    for key in TIMING_KEYS:
        d.pop(key)
    for key in ("train", "train_cvae"):
        if d.get(key):
            d[key].pop("seconds")
    return d


def test_json_has_required_keys_and_types(tiny):
    d = json.loads(json.dumps(tiny, allow_nan=False))  # JSON-able, no NaN
    assert REQUIRED_MINVAR <= set(d["minvar"])
    assert "cvae" not in d["minvar"]
    assert all(isinstance(v, float) and 0 < v < 1 for v in d["minvar"].values())
    assert list(d["minvar"].values()) == sorted(d["minvar"].values())
    assert set(d["factor_recovery"]) == {"vae", "pca", "factor_analysis"}
    for r2 in d["factor_recovery"].values():
        assert len(r2) == 4 and all(0.0 <= v <= 1.0 for v in r2)
    assert d["factor_names"][0] == "market"
    assert 0.0 <= d["latent_market_corr"] <= 1.0
    assert set(d["latent_observable_corr"]) == {"market", "volatility", "macro_slope"}
    assert d["latent_observable_corr"]["market"] == d["latent_market_corr"]
    assert d["latent_observable_series"]["volatility"] == "daily change"
    assert set(d["anomaly"]) >= {
        "error_vs_anomaly_rho",
        "high_error_mean_dd",
        "low_error_mean_dd",
        "partial_rho_given_idio_vol",
    }
    assert d["anomaly"]["n_high"] == 4 and d["anomaly"]["n_low"] == 16  # top 20 % of 20
    assert d["train"]["epochs"] == TINY["epochs"]
    assert isinstance(d["train"]["final_loss"], float) and d["train"]["seconds"] >= 0
    assert d["mode"] == "single_split" and d["n_rebalances"] == 1
    assert d["per_regime"] is None


def test_gaps_and_intervals_are_consistent(tiny):
    oracle = tiny["minvar"]["oracle"]
    for name, vol in tiny["minvar"].items():
        assert tiny["gap_to_oracle"][name] == pytest.approx(vol - oracle, abs=1e-12)
    assert tiny["intervals"]["ledoit_wolf"]["vs_ledoit_wolf"] is None
    diff, lo, hi = tiny["intervals"]["vae"]["vs_pca"]
    assert lo <= hi
    assert diff == pytest.approx(tiny["minvar"]["vae"] - tiny["minvar"]["pca"], abs=1e-9)
    # the improved variants are scored under their own names
    assert {"vae_posterior", "vae_shrunk"} <= set(tiny["vae_variants"]) <= set(tiny["minvar"])


def test_deterministic_apart_from_timings(tiny):
    again = run_experiment(**TINY).to_json_dict()
    assert _without_timings(again) == _without_timings(tiny)


def test_market_is_recovered_on_a_small_panel(tiny):
    assert tiny["factor_recovery"]["vae"][0] > 0.5
    assert tiny["latent_market_corr"] > 0.6


def test_condition_labels_are_the_previous_close_regime():
    panel = generate_panel(n_days=200, n_names=10, kind="regime")
    labels = condition_labels(panel)
    regime = panel.observables["regime"]
    assert labels.iloc[0] == 0
    assert (labels.iloc[1:].to_numpy() == regime.iloc[:-1].to_numpy()).all()
    assert regime.nunique() == 2  # the panel does visit both regimes


def test_conditional_walk_forward_adds_cvae_and_per_regime():
    d = run_experiment(
        **TINY, kind="regime", conditional=True, walk_forward=True, window=120, rebalance=45
    ).to_json_dict()
    assert {"cvae", "ledoit_wolf_regime"} <= set(d["minvar"])
    assert "cvae" in d["factor_recovery"] and d["train_cvae"]["epochs"] == TINY["epochs"]
    assert d["mode"] == "walk_forward" and d["n_rebalances"] == math.ceil((300 - 120) / 45)
    # per rebalance one fit per distinct model the raced estimators read (the registry's), plus
    # on the training part (150 days) the reference VAE and CVAE (interpretation) and the
    # headline VAE (the anomaly test's surprise)
    raced = model_keys(experiment_estimators(True))
    assert len(raced) >= 4 and "vae_hetero" in d["minvar"] and "vae_reference" in d["minvar"]
    assert d["n_fits"] == len(raced) * d["n_rebalances"] + 3
    assert "cvae_reference" in d["minvar"] and "cvae" in d["minvar"]
    per = d["per_regime"]
    assert set(per) == {"expansion", "contraction"}
    assert sum(r["n_days"] for r in per.values()) == 300 - 120
    assert sum(r["n_rebalances"] for r in per.values()) == d["n_rebalances"]
    for r in per.values():
        if r["n_days"] >= 2:
            assert set(r["vol"]) == set(d["minvar"])
    for name, ci in d["intervals"].items():
        if name not in ("pca", "ledoit_wolf"):
            assert ci["vs_pca"][1] <= ci["vs_pca"][2] and ci["vs_ledoit_wolf"] is not None


@pytest.mark.parametrize(
    "bad",
    [
        {"beta": -0.1},
        {"epochs": 0},
        {"latent": 0},
        {"kind": "quadratic"},
        {"latent": 20, "n_names": 20},
        {"walk_forward": True, "n_days": 300, "window": 504},
        {"device": "tpu"},
    ],
)
def test_invalid_settings_raise_before_any_work(bad):
    with pytest.raises(ValueError):
        ExperimentConfig(**{**TINY, **bad})


# ---- issue 2 "Done when" on the full seed-42 panel (60 names, 1260 days) -------------------
# With the current defaults (what `vae train` runs): TrainConfig lr 3e-2 (at 1e-2, 300 full-batch
# epochs stop before the decoder's columns orthogonalise), equal style vols of 0.005, PCA on the
# correlation scale. Each test asserts exactly the targets these defaults reach (numbers: the
# seed-42 run these tests were written from).


@pytest.mark.slow
def test_full_single_split_targets():
    d = run_experiment().to_json_dict()
    assert d["lr"] == pytest.approx(3e-2)
    vae = d["factor_recovery"]["vae"]
    assert vae[0] >= 0.83  # 0.962
    assert min(vae[1:]) >= 0.64  # 0.705 / 0.877 / 0.776: every style factor
    assert d["latent_market_corr"] >= 0.91  # 0.932
    mv = d["minvar"]
    assert mv["vae"] < mv["sample"] and mv["vae"] < mv["ledoit_wolf"]  # 10.19 vs 10.95 / 10.86 %
    assert d["anomaly"]["error_vs_anomaly_rho"] > 0  # 0.33
    assert d["anomaly"]["high_error_mean_dd"] < d["anomaly"]["low_error_mean_dd"]  # -50 vs -33 %


@pytest.mark.slow
def test_full_walk_forward_targets():
    d = run_experiment(walk_forward=True).to_json_dict()
    mv = d["minvar"]
    assert mv["vae"] < mv["sample"] and mv["vae"] < mv["ledoit_wolf"]  # 10.22 vs 10.56 / 10.50 %
    assert d["intervals"]["vae"]["vs_ledoit_wolf"][2] < 0  # the win over LW is outside the noise
    # "VAE at or below PCA(k=4)": NOT reached by the reference "vae" against the correlation-scale
    # PCA (10.22 vs 10.18 %, +0.04 [-0.06, +0.15]: a tie within the bootstrap noise) ...
    assert d["intervals"]["vae"]["vs_pca"][1] < 0
    # ... but reached by the learned-noise variant (10.14 %), closest to factor analysis (10.12 %).
    assert mv["vae_hetero"] <= mv["pca"]
    assert mv["vae_hetero"] < mv["vae"]
    assert all(np.isfinite(v) for v in d["gap_to_oracle"].values())
    assert min(mv, key=mv.get) == "oracle"


@pytest.mark.slow
def test_full_regime_conditional_walk_forward_report():
    """`vae train --kind regime --conditional --walk-forward`: "report whatever it shows"."""
    d = run_experiment(kind="regime", conditional=True, walk_forward=True).to_json_dict()
    mv, per = d["minvar"], d["per_regime"]
    names = {"cvae", "vae", "vae_hetero", "ledoit_wolf", "ledoit_wolf_regime", "factor_analysis"}
    assert names <= set(mv) and set(per) == {"expansion", "contraction"}
    for regime in per.values():
        assert regime["n_rebalances"] > 0 and names <= set(regime["vol"])
        # the CVAE beats its classical rival, Ledoit-Wolf on the regime's days, in both regimes
        assert regime["vol"]["cvae"] < regime["vol"]["ledoit_wolf_regime"]
    # splitting the window by regime costs Ledoit-Wolf more than it gains (outside the noise)
    assert d["intervals"]["ledoit_wolf_regime"]["vs_ledoit_wolf"][1] > 0
    # (cvae 11.13 % vs vae 11.17 %, vae_hetero 11.10 %, factor analysis 11.09 %: ties within the
    # noise, not asserted; seeds 43 and 44 order them differently.)
