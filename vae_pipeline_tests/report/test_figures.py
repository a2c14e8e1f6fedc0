"""The Plotly figure functions: each draws its data, without a browser or Dagster."""

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from vae_pipeline.report import figures

DATES = pd.bdate_range("2024-01-02", periods=40, name="date")


def _points(fig: go.Figure) -> int:
    """Data points over all traces (x of scatter / bar, cells of heatmaps)."""
    total = 0
    for trace in fig.data:
        if isinstance(trace, go.Heatmap):
            total += int(np.size(trace.z))
        else:
            total += len(trace.x if trace.x is not None else trace.y)
    return total


def test_training_loss_draws_every_series_of_every_model():
    history = pd.DataFrame(
        {"epoch": range(1, 11), "total": np.linspace(10, 5, 10), "recon": np.linspace(9, 4, 10)}
    ).assign(kl=lambda h: h["total"] - h["recon"])
    fig = figures.training_loss({"vae": history, "cvae": history * 1.1})
    assert [t.name for t in fig.data] == [
        f"{m} {c}" for m in ("vae", "cvae") for c in ("total", "recon", "kl")
    ]
    np.testing.assert_allclose(fig.data[1].y, history["recon"])


def test_beta_tradeoff_marks_the_pipeline_beta():
    sweep = pd.DataFrame(
        {"beta": [0.1, 1.0, 10.0], "recon": [9.0, 10.0, 19.0], "kl": [12.0, 3.0, 0.1]}
    ).assign(active_dims=[4, 4, 2])
    fig = figures.beta_tradeoff(sweep, chosen_beta=1.0)
    assert list(fig.data[1].y) == [4, 4, 2]
    star = fig.data[-1]
    assert (star.x[0], star.y[0]) == (3.0, 10.0)


def test_latent_trajectories_cumulate_latents_beside_the_observables():
    rng = np.random.default_rng(0)
    latents = pd.DataFrame(rng.normal(size=(40, 3)), index=DATES, columns=["z1", "z2", "z3"])
    obs = pd.DataFrame(
        {"market": rng.normal(0, 0.01, 40), "volatility": 15 + rng.random(40)},
        index=DATES,
    ).assign(macro_slope=1.0)
    fig = figures.latent_trajectories(latents, obs)
    assert len(fig.data) == 3 + 3
    z1 = latents["z1"] / latents["z1"].std()
    np.testing.assert_allclose(fig.data[0].y, z1.cumsum())
    np.testing.assert_allclose(fig.data[3].y, (1 + obs["market"]).cumprod() - 1)


def test_correlation_heatmap_and_recovery_show_the_values():
    corr = pd.DataFrame([[0.9, 0.1], [0.2, 0.6]], index=["z1", "z2"], columns=["market", "vix"])
    heat = figures.correlation_heatmap(corr)
    np.testing.assert_allclose(heat.data[0].z, corr.to_numpy())
    recovery = pd.DataFrame({"vae": [0.9, 0.3], "pca": [0.95, 0.4]}, index=["market", "style_1"])
    bars = figures.factor_recovery(recovery)
    assert [t.name for t in bars.data] == ["vae", "pca"]


def test_embedding_map_has_one_trace_per_sector():
    coords = pd.DataFrame(
        {"x": [0.0, 1.0, 2.0, 3.0], "y": [1.0, 0.0, 1.0, 0.0], "sector": ["A", "B", "A", "B"]},
        index=pd.Index(["S1", "S2", "S3", "S4"], name="ticker"),
    )
    fig = figures.embedding_map(coords, silhouette=0.5)
    assert sorted(t.name for t in fig.data) == ["A", "B"]
    assert _points(fig) == 4
    assert "0.50" in fig.layout.title.text


def test_embedding_maps_side_by_side_with_their_silhouettes():
    frame = pd.DataFrame(
        {"ticker": ["S1", "S2", "S3", "S4"], "x": [0.0, 1.0, 2.0, 3.0],
         "y": [1.0, 0.0, 1.0, 0.0], "sector": ["A", "B", "A", "B"]}
    )  # fmt: skip
    fig = figures.embedding_maps({"umap": frame, "pca": frame.assign(x=-frame["x"])},
                                 {"umap": 0.61, "pca": None})  # fmt: skip
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["UMAP: sector silhouette 0.61", "PCA: sector silhouette n/a"]
    assert [t.xaxis for t in fig.data] == ["x", "x", "x2", "x2"]  # one panel per map
    assert [t.showlegend for t in fig.data] == [True, True, False, False]  # one legend
    assert fig.data[0].marker.color == fig.data[2].marker.color  # a sector keeps its colour
    assert _points(fig) == 8


def test_realised_vol_one_line_per_estimator_and_the_oracle_dashed():
    card = pd.DataFrame(
        [
            (d, e, v)
            for d in DATES[:5]
            for e, v in (("vae", 0.1), ("oracle", 0.08), ("sample", 0.2))
        ],
        columns=["date", "estimator", "realised_vol"],
    )
    fig = figures.realised_vol(card, highlight="vae")
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {"vae", "oracle", "sample"}
    assert by_name["oracle"].line.dash == "dash"
    assert by_name["sample"].opacity < by_name["vae"].opacity
    assert all(len(t.x) == 5 for t in fig.data)
    # One scored partition: a category axis (plotly.js would draw clock ticks for one date).
    single = figures.realised_vol(card[card["date"] == DATES[0]])
    assert single.layout.xaxis.type == "category"


def test_empty_inputs_draw_an_explanation_not_a_blank():
    empty = figures.realised_vol(pd.DataFrame(columns=["date", "estimator", "realised_vol"]))
    assert "no scored partition" in empty.layout.annotations[0].text
    nothing = figures.anomaly_drawdowns(pd.DataFrame(), pd.Series(dtype=bool))
    assert nothing.layout.annotations


def test_anomaly_drawdowns_start_at_zero_and_never_go_positive():
    rng = np.random.default_rng(1)
    resid = pd.DataFrame(rng.normal(0, 0.01, (5, 4)), index=DATES[1:6], columns=list("ABCD"))
    flags = pd.Series([True, False, False, True], index=list("ABCD"))
    fig = figures.anomaly_drawdowns(resid, flags, decision_date=DATES[0])
    means = {t.name: t for t in fig.data if "mean" in t.name}
    assert set(means) == {"flagged mean (2 names)", "rest mean (2 names)"}
    for trace in fig.data:
        assert trace.y[0] == 0.0 and max(trace.y) <= 0.0
        assert pd.Timestamp(trace.x[0]) == DATES[0]


def test_cvae_regime_shift_shows_the_correlation_change():
    base = np.array([[1.0, 0.2], [0.2, 1.0]]) * 1e-4
    stressed = np.array([[2.0, 1.0], [1.0, 2.0]]) * 1e-4
    fig = figures.cvae_regime_shift(base, stressed, ["A", "B"])
    shift = np.asarray(fig.data[0].z)
    assert shift[0, 1] == pytest.approx(0.5 - 0.2)
    np.testing.assert_allclose(fig.data[2].x, np.sqrt(np.diag(base) * 252))


def test_horse_race_and_weights():
    race = pd.DataFrame(
        {"estimator": ["vae", "oracle"], "rms_vol": [0.1, 0.08], "n_scored": [3, 3]}
    )
    fig = figures.horse_race_bars(race)
    assert list(fig.data[0].x) == ["oracle", "vae"]
    weights = pd.DataFrame(
        {
            "estimator": ["vae"] * 2 + ["ledoit_wolf"] * 2,
            "ticker": ["A", "B"] * 2,
            "weight": [0.6, 0.4, 0.5, 0.5],
        }
    )
    bars = figures.minvar_weights(weights, ["vae", "ledoit_wolf"])
    assert [list(t.y) for t in bars.data] == [[0.6, 0.4], [0.5, 0.5]]


def test_the_figures_module_does_not_import_dagster():
    import ast
    from pathlib import Path

    import vae_pipeline.report as report

    for path in Path(report.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        names = [
            n.module if isinstance(n, ast.ImportFrom) else a.name
            for n in ast.walk(tree)
            if isinstance(n, ast.Import | ast.ImportFrom)
            for a in (n.names if isinstance(n, ast.Import) else [n])
        ]
        assert not any(str(m).startswith("dagster") for m in names), path.name
