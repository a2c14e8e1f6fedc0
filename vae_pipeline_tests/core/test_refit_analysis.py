"""The analysis stages of core.refit (anomalies, interpretation, embedding): the same numbers
as the assembly ``vae train`` and the assets did before them, the top 20 % flagged, recovery
R^2 only when the truth is known, and the PCA map when asked (never importing umap)."""

from __future__ import annotations

import builtins

import numpy as np
import pandas as pd
import pytest

import vae_pipeline.core.embedding as core_embedding
from vae_pipeline.core.anomaly import (
    anomaly_test,
    flag_anomalies,
    market_residual_returns,
    max_drawdown,
    reconstruction_error,
)
from vae_pipeline.core.embedding import embed
from vae_pipeline.core.interpretation import baseline_latents, interpret
from vae_pipeline.core.refit import (
    ANOMALY_REPORT_COLUMNS,
    INTERPRETATION_COLUMNS,
    embed_stocks,
    evaluate_anomalies,
    evaluate_flags,
    interpret_factors,
    latent_means,
    model_errors,
    stock_maps,
)
from vae_pipeline.core.synthetic import generate_panel
from vae_pipeline.core.training import TrainConfig, train_vae

K = 2
SEED = 42
SURPRISE_FIELDS = {"surprise_vs_anomaly_rho", "surprise_partial_rho", "surprise_partial_rho_ci"}


@pytest.fixture(scope="module")
def day():
    """A tiny seed-42 panel of 15 names: a 100-day training window, its VAE, 40 later days."""
    panel = generate_panel(n_days=140, n_names=15, kind="linear", seed=SEED)
    train, test = panel.returns.iloc[:100], panel.returns.iloc[100:]
    vae = train_vae(train, TrainConfig(latent_dim=K, epochs=15, seed=SEED, device="cpu"))
    return panel, train, test, vae


# -- anomalies ------------------------------------------------------------------------------
def test_flag_evaluation_is_the_experiments_anomaly_test(day):
    """beta_days="held" is vae train's single split, assembled as core/experiment.py did."""
    panel, train, test, vae = day
    std, market = vae.standardiser, panel.observables["market"]
    errors = reconstruction_error(
        pd.DataFrame(std.transform(train), index=train.index, columns=train.columns),
        std.transform(vae.reconstruct(train)),
    )
    trailing = market_residual_returns(train, market.loc[train.index]).std(ddof=1)
    future = market_residual_returns(test, market.loc[test.index])
    expected = anomaly_test(errors, future, trailing, planted=panel.anomaly, seed=SEED)

    found = evaluate_flags(vae, train, test, market, panel.anomaly, SEED, beta_days="held")
    # the error's numbers are unchanged; the surprise's test rides beside them
    assert found.test.model_dump(exclude=SURPRISE_FIELDS) == expected.model_dump(
        exclude=SURPRISE_FIELDS
    )
    assert found.test.surprise_partial_rho is not None
    assert found.decision_date == train.index[-1]
    # the span beta is another figure: the choice is the caller's, not silently the same
    span = evaluate_flags(vae, train, test, market, panel.anomaly, SEED, beta_days="span")
    assert span.test != expected


def test_anomaly_report_is_the_assets_assembly(day):
    """Today's errors and flags, and the decision date's flags against (d-H, d] with the beta
    over window + held days, as the anomaly_report asset assembled them; a name missing a
    held day drops out of the test and has no later drawdown."""
    panel, train, test, vae = day
    market = panel.observables["market"]
    now = pd.concat([train, test]).iloc[-100:]
    held = test.iloc[:21].copy()
    gap = held.columns[3]
    held.iloc[5, 3] = np.nan
    planted = panel.anomaly

    report = evaluate_anomalies(vae, now, market, vae, train, held, planted=planted, seed=SEED)

    errors = model_errors(vae, now, market)
    before = model_errors(vae, train, market)
    span = pd.concat([train, held.reindex(columns=train.columns)]).dropna(axis=1)
    resid = market_residual_returns(span, market.reindex(span.index)).loc[held.index]
    expected = anomaly_test(
        before["recon_error"], resid, before["idio_vol"], planted=planted.astype(bool), seed=SEED
    )
    frame = report.frame
    assert list(frame.columns) == ANOMALY_REPORT_COLUMNS and frame.index.name == "ticker"
    old = report.test.model_dump(exclude=SURPRISE_FIELDS)
    assert old == expected.model_dump(exclude=SURPRISE_FIELDS)
    assert report.test.n_high + report.test.n_low == 14
    pd.testing.assert_series_equal(frame["recon_error"], errors["recon_error"], check_names=False)
    pd.testing.assert_series_equal(frame["idio_vol"], errors["idio_vol"], check_names=False)
    np.testing.assert_array_equal(frame["planted"], planted.reindex(frame.index).astype(float))
    np.testing.assert_array_equal(frame["decision_error"], before["recon_error"])
    np.testing.assert_array_equal(
        frame["decision_flagged"], flag_anomalies(before["recon_error"]).astype(float)
    )
    drawdown = max_drawdown(resid)
    assert np.isnan(frame.loc[gap, "later_drawdown"])
    np.testing.assert_array_equal(frame["later_drawdown"].drop(gap), drawdown)
    assert (frame["decision_date"] == train.index[-1]).all()
    assert report.metadata()["partial_rho_given_idio_vol"] == expected.partial_rho_given_idio_vol


def test_anomaly_stage_flags_exactly_the_top_fifth(day):
    panel, train, test, vae = day
    market = panel.observables["market"]
    report = evaluate_anomalies(vae, train, market, vae, train, test.iloc[:21], seed=SEED)
    frame = report.frame
    n_top = round(0.2 * len(frame))
    assert frame["flagged"].dtype == bool and report.n_flagged == n_top == 3
    top = frame["recon_error"].nlargest(n_top).index
    assert set(frame.index[frame["flagged"]]) == set(top)
    assert frame.loc[top, "decision_flagged"].eq(1.0).all()
    assert frame["decision_flagged"].sum() == n_top
    assert frame["planted"].isna().all()  # no truth given


def test_anomaly_stage_without_a_decision_model_reports_today_only(day):
    panel, train, test, vae = day
    market = panel.observables["market"]
    report = evaluate_anomalies(vae, train, market)
    assert report.test is None and report.decision_date is None
    assert report.frame[["decision_error", "decision_flagged", "later_drawdown"]].isna().all().all()
    assert report.frame["decision_date"].isna().all()
    assert report.metadata() == {"flagged": 3}
    with pytest.raises(ValueError, match="together"):
        evaluate_anomalies(vae, train, market, model_then=vae, window_then=train)


# -- interpretation -------------------------------------------------------------------------
def test_interpretation_is_the_experiments(day):
    """The stage's figures equal core/experiment.py's assembly (baselines fitted on the same
    window and seed); the latents are named z1..zk as the pipeline stores them."""
    panel, train, _, vae = day
    observables = panel.observables.drop(columns="regime")
    baselines = {m: baseline_latents(train, K, m, seed=SEED) for m in ("pca", "factor_analysis")}
    latents = pd.DataFrame(vae.encode_mean(train), index=train.index, columns=["z0", "z1"])
    expected = interpret(latents, observables, panel.factors.loc[train.index], baselines, "vae")

    found = interpret_factors(vae, train, observables, panel.factors, seed=SEED)
    assert found.summary.latent_names == ["z1", "z2"]
    assert found.summary.model_dump(exclude={"latent_names"}) == expected.model_dump(
        exclude={"latent_names"}
    )
    assert set(found.summary.recovery_r2) == {"vae", "pca", "factor_analysis"}
    for method, scores in baselines.items():
        pd.testing.assert_frame_equal(found.baselines[method], scores)
    # a stored latent frame gives the same figures as the model it came from
    stored = interpret_factors(latent_means(vae, train), train, observables, panel.factors)
    assert stored.summary == found.summary


def test_recovery_r2_only_when_the_truth_is_given(day):
    panel, train, _, vae = day
    observables = panel.observables.loc[train.index, ["market", "volatility", "macro_slope"]]
    blind = interpret_factors(vae, train, observables, None, seed=SEED)
    assert blind.summary.recovery_r2 is None and blind.recovery_r2 is None
    assert blind.summary.factor_names == []
    assert list(blind.rows.columns) == INTERPRETATION_COLUMNS
    assert set(blind.rows["metric"]) == {"abs_corr"}
    assert len(blind.rows) == K * len(blind.summary.abs_corr)
    assert set(blind.rows["latent"]) == {"z1", "z2"} and set(blind.rows["method"]) == {"vae"}

    truth = panel.factors
    told = interpret_factors(vae, train, observables, truth, seed=SEED)
    r2 = told.recovery_r2
    assert list(r2.index) == [str(c) for c in truth.columns]
    assert list(r2.columns) == ["vae", "pca", "factor_analysis"]
    rows = told.rows[told.rows["metric"] == "recovery_r2"]
    assert len(rows) == 3 * truth.shape[1] and (rows["latent"] == "").all()
    # the correlations do not depend on whether the truth is known
    assert told.summary.abs_corr == blind.summary.abs_corr

    alone = interpret_factors(vae, train, observables, truth, baselines=(), name="cvae")
    assert list(alone.recovery_r2.columns) == ["cvae"] and alone.baselines == {}
    assert set(alone.rows["method"]) == {"cvae"}


# -- embedding ------------------------------------------------------------------------------
def test_embedding_is_the_assets_map(day):
    panel, train, _, vae = day
    sectors = panel.sectors.drop(train.columns[:2])  # two names without a sector
    found = embed_stocks(vae, train, sectors, method="pca", seed=SEED)
    expected, result = embed(
        train, latent_means(vae, train), sectors.reindex(train.columns).fillna("Unknown"),
        method="pca", seed=SEED,
    )  # fmt: skip
    pd.testing.assert_frame_equal(found.coords, expected.rename_axis("ticker"))
    assert (found.coords.loc[train.columns[:2], "sector"] == "Unknown").all()
    assert found.result == result and found.silhouette is not None


def test_embedding_falls_back_to_pca_when_asked(day, monkeypatch):
    panel, train, _, vae = day
    real_import = builtins.__import__

    def no_umap(name, *args, **kwargs):
        if name == "umap" or name.startswith("umap."):
            raise AssertionError("umap imported for a PCA map")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_umap)
    asked = embed_stocks(vae, train, panel.sectors, method="pca", seed=SEED)
    assert asked.method == "pca" and list(asked.coords.columns) == ["x", "y", "sector"]
    monkeypatch.setattr(core_embedding, "_umap_available", lambda: False)
    auto = embed_stocks(vae, train, panel.sectors, method="auto", seed=SEED)
    assert auto.method == "pca"
    pd.testing.assert_frame_equal(auto.coords, asked.coords)
    # no sectors at all: every name mapped as "Unknown", no silhouette
    blind = embed_stocks(latent_means(vae, train), train, None, method="pca", seed=SEED)
    assert blind.silhouette is None and (blind.coords["sector"] == "Unknown").all()


def test_stock_maps_are_the_umap_map_and_its_pca_baseline(day):
    panel, train, _, vae = day
    umap_map, pca_map = stock_maps(vae, train, panel.sectors, seed=SEED)  # default: UMAP
    assert (umap_map.method, pca_map.method) == ("umap", "pca")
    assert list(umap_map.coords.index) == list(pca_map.coords.index) == list(train.columns)
    assert not np.allclose(umap_map.coords[["x", "y"]], pca_map.coords[["x", "y"]])
    alone = embed_stocks(vae, train, panel.sectors, method="pca", seed=SEED)
    pd.testing.assert_frame_equal(pca_map.coords, alone.coords)
    assert pca_map.silhouette == alone.silhouette
    # a PCA map has no baseline besides itself
    (only,) = stock_maps(vae, train, panel.sectors, method="pca", seed=SEED)
    pd.testing.assert_frame_equal(only.coords, alone.coords)


# -- callers --------------------------------------------------------------------------------
def test_benchmark_direct_refit_runs_the_analysis_stages(tmp_path, monkeypatch):
    """benchmarks/refit.py's DirectRefit times the stages themselves, not its own copy."""
    import importlib.util
    from pathlib import Path

    import vae_pipeline.core.refit as refit

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "refit.py"
    spec = importlib.util.spec_from_file_location("bench_refit", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    calls: dict[str, object] = {}
    for name in ("interpret_factors", "embed_stocks", "evaluate_anomalies"):

        def spy(*args, _stage=getattr(refit, name), _name=name, **kwargs):
            calls[_name] = out = _stage(*args, **kwargs)
            return out

        monkeypatch.setattr(refit, name, spy)
    direct = bench.DirectRefit(bench.bench_settings(12, tmp_path / "b.duckdb", 560, epochs=5))
    direct.prepare()
    direct.run()
    assert set(calls) == {"interpret_factors", "embed_stocks", "evaluate_anomalies"}
    assert calls["interpret_factors"].recovery_r2 is not None  # synthetic: the truth is known
    assert calls["embed_stocks"].method == "pca"
    report = calls["evaluate_anomalies"]
    assert report.test is not None and report.test.error_vs_anomaly_rho is not None
    assert report.decision_date == direct.decision[0]
