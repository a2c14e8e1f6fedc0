"""The core refit stages (core.refit): same numbers as the estimators called directly, the
registry decides what is trained and estimated, estimation never trains, and every caller
(vae train's walk-forward, the benchmark's DirectRefit) makes the same decisions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import vae_pipeline.core.refit.models as refit_models
from vae_pipeline.core.covariance import (
    REGISTRY,
    CVAECovariance,
    EstimatorSpec,
    ModelKey,
    VAEClosedFormCovariance,
    VAECovariance,
    VAEHeteroCovariance,
    make_estimator,
    model_keys,
)
from vae_pipeline.core.minvar import minvar_weights
from vae_pipeline.core.refit import (
    CVAE_MODEL,
    VAE_MODEL,
    WindowRefit,
    estimate_covariances,
    estimate_decisions,
    experiment_estimators,
    fit_models,
    score_decision,
)
from vae_pipeline.core.synthetic import generate_panel
from vae_pipeline.core.training import TrainConfig, train_vae

K = 2
CFG = TrainConfig(latent_dim=K, epochs=15, seed=42, device="cpu")
LEARNED_VAE = ModelKey("vae", (("noise", "learned"),))


@pytest.fixture(scope="module")
def day():
    """A tiny seed-42 regime panel: a 120-day window of 12 names, its labels and oracle."""
    panel = generate_panel(n_days=160, n_names=12, kind="regime", seed=42)
    window = panel.returns.iloc[:120]
    regimes = panel.observables["regime"].astype(int).loc[window.index].to_numpy()
    oracle = panel.true_covariance(window.index[-1])
    models = fit_models(window, regimes, CFG)
    return panel, window, regimes, oracle, models


def test_fit_models_trains_each_registry_model_once(day):
    _, _, _, _, models = day
    assert set(models.trained) == set(model_keys(list(REGISTRY)))  # each distinct model, once
    assert {VAE_MODEL, CVAE_MODEL, LEARNED_VAE} <= set(models.trained)
    assert len(models.trained) == len(set(models.trained))
    assert models.for_estimator("vae_posterior") is models.vae
    assert models.for_estimator("vae_hetero").config.noise == "learned"
    assert models.cvae.n_conditions == 2


def test_stages_match_the_estimators_called_directly(day):
    _, window, regimes, oracle, models = day
    covs = estimate_covariances(window, K, models, regimes, oracle, n_samples=300)
    assert list(covs) == [n for n in REGISTRY]  # all servable, registry order
    direct = {
        "ledoit_wolf": make_estimator("ledoit_wolf").fit(window).covariance_,
        "pca": make_estimator("pca", n_components=K).fit(window).covariance_,
        "vae_reference": VAECovariance.from_trained(models.vae, window, n_samples=300).covariance_,
        "vae": VAEClosedFormCovariance.from_trained(
            models.for_estimator("vae"), window
        ).covariance_,
        "vae_hetero": VAEHeteroCovariance.from_trained(
            train_vae(window, TrainConfig(**{**CFG.__dict__, "noise": "learned"})),
            window,
            n_samples=300,
        ).covariance_,
        "cvae_reference": CVAECovariance.from_trained(
            models.cvae, window, y=regimes, n_samples=300
        ).covariance_,
        "ledoit_wolf_regime": make_estimator("ledoit_wolf_regime").fit(window, regimes).covariance_,
        "oracle": oracle,
    }
    for name, cov in direct.items():
        np.testing.assert_array_equal(covs[name], cov, err_msg=name)
    decisions = estimate_decisions(window, models, regimes, K, oracle, n_samples=300)
    assert not decisions.psd_problems and not decisions.weight_problems
    assert len(decisions.frame) == len(covs) * window.shape[1]  # O(N) rows per estimator
    for name, w in decisions.weights().items():
        np.testing.assert_array_equal(w, minvar_weights(covs[name]))


def test_estimation_never_trains(day, monkeypatch):
    _, window, regimes, oracle, models = day

    def refuse(*args, **kwargs):
        raise AssertionError("estimate_decisions trained a model")

    monkeypatch.setattr(refit_models, "train_vae", refuse)
    monkeypatch.setattr("vae_pipeline.core.covariance.vae.train_vae", refuse)
    decisions = estimate_decisions(window, models, regimes, K, oracle, n_samples=100)
    assert "vae_hetero" in decisions.estimators and "cvae_hetero" in decisions.estimators
    # and given models are not retrained
    again = fit_models(window, regimes, CFG, given=models.models)
    assert again.trained == ()


def test_a_registry_entry_is_trained_and_estimated(day, monkeypatch):
    _, window, regimes, _, models = day
    spec = EstimatorSpec(VAECovariance, model="vae", train_overrides={"decoder": "mlp"})
    monkeypatch.setitem(REGISTRY, "vae_mlp", spec)
    assert "vae_mlp" in experiment_estimators(conditional=False)
    fitted = fit_models(window, regimes, CFG, given=models.models)
    mlp = ModelKey("vae", (("decoder", "mlp"),))
    assert fitted.trained == (mlp,) and fitted[mlp].model.decoder_kind == "mlp"
    decisions = estimate_decisions(window, fitted, regimes, K, n_samples=100)
    assert "vae_mlp" in decisions.estimators


def test_missing_needs_leave_an_estimator_out_or_raise(day):
    _, window, regimes, _, models = day
    covs = estimate_covariances(window, K, n_samples=100)
    assert set(covs) == {
        "sample", "ledoit_wolf", "nonlinear_shrinkage", "pca", "factor_analysis", "pca_auto",
        "factor_analysis_auto",
    }  # fmt: skip
    with pytest.raises(ValueError, match="regime labels"):
        estimate_covariances(window, K, models, names=["cvae"])
    with pytest.raises(ValueError, match="regime labels"):
        fit_models(window, None, CFG, names=["cvae"])
    wide = window.iloc[:12]  # N >= T - 1: the sample covariance is singular
    assert "sample" not in estimate_covariances(wide, K, names=["sample", "ledoit_wolf"])


def test_score_decision_is_the_held_portfolio_vol(day):
    panel, window, regimes, _, models = day
    decisions = estimate_decisions(window, models, regimes, K, n_samples=100)
    held = panel.returns.iloc[120:141]
    scores = score_decision(decisions.frame, held).set_index("estimator")
    w = decisions.weights()["ledoit_wolf"]
    expected = np.std(held.to_numpy() @ w, ddof=1) * np.sqrt(252.0)
    assert scores.loc["ledoit_wolf", "realised_vol"] == pytest.approx(expected, rel=1e-12)
    assert (scores["n_days"] == 21).all()


def test_walk_forward_refit_decides_as_the_stages(day):
    """The experiment's decision rule and a direct stage call agree on the same window."""
    panel, window, regimes, _, _ = day
    labels = pd.Series(panel.observables["regime"].astype(int), index=panel.returns.index)
    refit = WindowRefit(
        config=CFG, k=K, names=experiment_estimators(True), labels=labels, n_samples=100
    )
    weights, _ = refit(window.index[-1], window)
    # one fit per distinct model the raced estimators read (cvae_hetero is not raced)
    assert refit.n_fits == len(model_keys(experiment_estimators(True)))
    models = fit_models(window, regimes, CFG, names=experiment_estimators(True))
    direct = estimate_decisions(
        window, models, regimes, K, n_samples=100, names=experiment_estimators(True)
    ).weights()
    assert list(weights) == list(direct)
    for name in direct:
        np.testing.assert_array_equal(weights[name], direct[name], err_msg=name)


def test_benchmark_direct_refit_and_the_experiment_make_the_same_decisions(tmp_path):
    """benchmarks/refit.py's DirectRefit calls the stages: its decision of d - H equals the
    walk-forward decision rule's on the same window, labels and training config."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "refit.py"
    spec = importlib.util.spec_from_file_location("bench_refit", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    direct = bench.DirectRefit(bench.bench_settings(12, tmp_path / "b.duckdb", 560, epochs=5))
    direct.prepare()
    decision, vae, frame = direct.decision
    panel = direct.source.panel(decision)
    window = direct._window(panel, decision)
    refit = WindowRefit(
        config=direct._config(),
        k=direct.settings.model.latent_dim,
        names=experiment_estimators(True),
        labels=panel.observables["regime"].astype(int),
        seed=direct.settings.seed,
    )
    weights, _ = refit(decision, window)
    by_name = {n: rows["weight"].to_numpy() for n, rows in frame.groupby("estimator", sort=False)}
    assert set(weights) < set(by_name)  # the pipeline's set adds cvae_hetero and the oracle
    for name, w in weights.items():
        np.testing.assert_array_equal(w, by_name[name], err_msg=name)
