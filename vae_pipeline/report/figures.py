"""Plotly figures of the pipeline's results: one pure function per figure.

Every function takes frames / arrays (never a Dagster context or a database connection) and
returns a ``plotly.graph_objects.Figure``, so the HTML report, the Streamlit app and a notebook
draw the same pictures, and the tests check them without a browser.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

TEMPLATE = "plotly_white"
HEIGHT = 420
# Stable colours per estimator, so a name keeps its colour across figures and partitions.
ESTIMATOR_COLOURS = {
    "oracle": "#111111",
    "vae": "#d62728",
    "vae_posterior": "#ff7f0e",
    "vae_shrunk": "#e377c2",
    "cvae": "#9467bd",
    "ledoit_wolf": "#1f77b4",
    "ledoit_wolf_regime": "#17becf",
    "nonlinear_shrinkage": "#2ca02c",
    "pca": "#8c564b",
    "factor_analysis": "#bcbd22",
    "sample": "#7f7f7f",
}
MODEL_DASH = {"vae": "solid", "cvae": "dash"}


def estimator_colour(name: str, position: int = 0) -> str:
    return ESTIMATOR_COLOURS.get(name, qualitative.Dark24[position % len(qualitative.Dark24)])


def _layout(fig: go.Figure, title: str, height: int = HEIGHT, **kwargs) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01, "xanchor": "left"},
        template=TEMPLATE,
        height=height,
        margin={"l": 60, "r": 30, "t": 80, "b": 50},
        **kwargs,
    )
    return fig


def _empty(title: str, message: str) -> go.Figure:
    """A figure that says why there is nothing to draw (instead of a blank frame)."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, height=250)


def training_loss(histories: Mapping[str, pd.DataFrame]) -> go.Figure:
    """Loss per epoch of each model (e.g. ``{"vae": h, "cvae": h}``): total and reconstruction
    on the left, the KL term on the right (it lives on a much smaller scale)."""
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("total and reconstruction loss", "KL divergence"),
        horizontal_spacing=0.1,
    )
    for model, history in histories.items():
        dash = MODEL_DASH.get(model, "dot")
        for col, colour, pos in (
            ("total", "#1f77b4", 1),
            ("recon", "#ff7f0e", 1),
            ("kl", "#2ca02c", 2),
        ):
            fig.add_trace(
                go.Scatter(
                    x=history["epoch"],
                    y=history[col],
                    mode="lines",
                    name=f"{model} {col}",
                    line={"color": colour, "dash": dash},
                ),
                row=1,
                col=pos,
            )
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="loss per day (standardised units)", row=1, col=1)
    return _layout(fig, "Training loss: reconstruction + beta x KL")


def beta_tradeoff(sweep: pd.DataFrame, chosen_beta: float | None = None) -> go.Figure:
    """The fidelity-complexity trade-off of a beta sweep (columns beta, recon, kl, active_dims):
    reconstruction error against KL (the rate), and the active latent dimensions per beta."""
    fig = make_subplots(
        rows=1,
        cols=2,
        subplot_titles=("reconstruction vs KL (one point per beta)", "active latent dimensions"),
        horizontal_spacing=0.12,
    )
    sweep = sweep.sort_values("beta")
    labels = [f"beta={b:g}" for b in sweep["beta"]]
    fig.add_trace(
        go.Scatter(
            x=sweep["kl"],
            y=sweep["recon"],
            mode="lines+markers+text",
            text=labels,
            textposition="top center",
            cliponaxis=False,
            name="sweep",
            marker={"size": 9, "color": "#1f77b4"},
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Bar(
            x=[f"{b:g}" for b in sweep["beta"]],
            y=sweep["active_dims"],
            name="active dims",
            marker={"color": "#2ca02c"},
        ),
        row=1,
        col=2,
    )
    if chosen_beta is not None and (sweep["beta"] == chosen_beta).any():
        row = sweep.loc[sweep["beta"] == chosen_beta].iloc[0]
        fig.add_trace(
            go.Scatter(
                x=[row["kl"]],
                y=[row["recon"]],
                mode="markers",
                name=f"pipeline beta={chosen_beta:g}",
                marker={"size": 16, "symbol": "star", "color": "#d62728"},
            ),
            row=1,
            col=1,
        )
    fig.update_xaxes(title_text="KL per day (nats)", row=1, col=1)
    fig.update_yaxes(title_text="reconstruction error per day", row=1, col=1)
    fig.update_xaxes(title_text="beta", type="category", row=1, col=2)
    fig.update_yaxes(title_text="latent dims with KL > 0.01 nats", row=1, col=2)
    return _layout(fig, "Beta trade-off: fidelity against complexity")


def latent_trajectories(latents: pd.DataFrame, observables: pd.DataFrame) -> go.Figure:
    """The latent factors' cumulative paths beside the market, the volatility index and the
    macro slope over the same window (``observables`` columns market, volatility, macro_slope)."""
    latents = latents.sort_index()
    obs = observables.reindex(latents.index)
    fig = make_subplots(
        rows=4,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04,
        row_heights=[0.4, 0.2, 0.2, 0.2],
        subplot_titles=(
            "cumulative latent factors (each scaled to unit daily sd)",
            "cumulative market return",
            "volatility index",
            "macro slope (term spread, %)",
        ),
    )
    for i, name in enumerate(latents.columns):
        z = latents[name]
        sd = float(z.std()) or 1.0
        fig.add_trace(
            go.Scatter(
                x=latents.index,
                y=(z / sd).cumsum(),
                mode="lines",
                name=str(name),
                line={"color": qualitative.Set1[i % len(qualitative.Set1)]},
            ),
            row=1,
            col=1,
        )
    rows = (
        ("market", 2, lambda s: (1 + s).cumprod() - 1, "#111111"),
        ("volatility", 3, lambda s: s, "#8c564b"),
        ("macro_slope", 4, lambda s: s, "#17becf"),
    )
    for col, row, transform, colour in rows:
        if col in obs:
            fig.add_trace(
                go.Scatter(
                    x=obs.index,
                    y=transform(obs[col].astype(float)),
                    mode="lines",
                    name=col,
                    showlegend=False,
                    line={"color": colour},
                ),
                row=row,
                col=1,
            )
    fig.update_yaxes(tickformat=".0%", row=2, col=1)
    return _layout(fig, "Latent factors beside the market, volatility and macro slope", height=760)


def correlation_heatmap(abs_corr: pd.DataFrame) -> go.Figure:
    """|corr| of each latent (rows) with each observable (columns), annotated."""
    values = abs_corr.to_numpy(dtype=float)
    fig = go.Figure(
        go.Heatmap(
            z=values,
            x=[str(c) for c in abs_corr.columns],
            y=[str(i) for i in abs_corr.index],
            zmin=0.0,
            zmax=1.0,
            colorscale="Blues",
            text=np.round(values, 2),
            texttemplate="%{text:.2f}",
            colorbar={"title": {"text": "|corr|"}},
        )
    )
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Latent-observable correlation |corr| (levels and daily changes)")


def factor_recovery(recovery: pd.DataFrame) -> go.Figure:
    """R^2 of each true factor (rows) on all latents of each method (columns: vae, pca, ...)."""
    fig = go.Figure()
    for j, method in enumerate(recovery.columns):
        fig.add_trace(
            go.Bar(
                x=[str(i) for i in recovery.index],
                y=recovery[method],
                name=str(method),
                marker={"color": qualitative.Set2[j % len(qualitative.Set2)]},
                text=[f"{v:.2f}" for v in recovery[method]],
                textposition="outside",
            )
        )
    fig.update_yaxes(range=[0, 1.1], title_text="R^2 of the true factor on all latents")
    fig.update_layout(barmode="group")
    return _layout(fig, "True-factor recovery: VAE beside PCA and factor analysis")


def embedding_map(coords: pd.DataFrame, method: str = "pca", silhouette: float | None = None):
    """2-D map of each stock's loadings (columns x, y, sector; index or ``ticker`` column = name)."""
    frame = coords.reset_index() if "ticker" not in coords else coords
    names = frame["ticker"] if "ticker" in frame else frame.index.astype(str)
    frame = frame.assign(ticker=names)
    fig = go.Figure()
    for i, (sector, group) in enumerate(frame.groupby("sector", sort=True)):
        fig.add_trace(
            go.Scatter(
                x=group["x"],
                y=group["y"],
                mode="markers",
                name=str(sector),
                text=group["ticker"],
                hovertemplate="%{text}<br>x=%{x:.2f}, y=%{y:.2f}<extra>" + str(sector) + "</extra>",
                marker={"size": 11, "color": qualitative.D3[i % len(qualitative.D3)]},
            )
        )
    title = f"Stock embedding of the latent loadings ({method.upper()}), coloured by sector"
    if silhouette is not None and np.isfinite(silhouette):
        title += f": sector silhouette {silhouette:.2f}"
    fig.update_xaxes(title_text="dimension 1")
    fig.update_yaxes(title_text="dimension 2")
    return _layout(fig, title, height=480)


def embedding_maps(
    maps: Mapping[str, pd.DataFrame], silhouettes: Mapping[str, float | None] | None = None
) -> go.Figure:
    """The stock maps side by side (``maps``: method -> frame with ticker, x, y, sector; the
    first is the headline map, e.g. UMAP, then its PCA baseline), one colour per sector shared
    by the panels, each panel titled with its sector silhouette."""
    silhouettes = silhouettes or {}

    def label(method: str) -> str:
        score = silhouettes.get(method)
        shown = f"{score:.2f}" if score is not None and np.isfinite(score) else "n/a"
        return f"{method.upper()}: sector silhouette {shown}"

    methods = list(maps)
    fig = make_subplots(rows=1, cols=len(methods), subplot_titles=[label(m) for m in methods])
    sectors = sorted({str(s) for frame in maps.values() for s in frame["sector"]})
    colour = {s: qualitative.D3[i % len(qualitative.D3)] for i, s in enumerate(sectors)}
    for col, method in enumerate(methods, start=1):
        frame = maps[method]
        for sector, group in frame.groupby("sector", sort=True):
            fig.add_trace(
                go.Scatter(
                    x=group["x"],
                    y=group["y"],
                    mode="markers",
                    name=str(sector),
                    legendgroup=str(sector),
                    showlegend=col == 1,
                    text=group["ticker"],
                    hovertemplate="%{text}<extra>" + str(sector) + "</extra>",
                    marker={"size": 10, "color": colour[str(sector)]},
                ),
                row=1,
                col=col,
            )
        fig.update_xaxes(title_text="dimension 1", row=1, col=col)
        fig.update_yaxes(title_text="dimension 2", row=1, col=col)
    return _layout(fig, "Stock map of the latent loadings, coloured by sector", height=480)


def realised_vol(scorecards: pd.DataFrame, highlight: str | None = None) -> go.Figure:
    """Walk-forward realised (out-of-sample) annualised vol of each estimator's min-variance
    portfolio through time (long: date, estimator, realised_vol); the oracle dashed black."""
    if scorecards.empty:
        return _empty("Realised min-variance vol", "no scored partition yet")
    frame = scorecards.assign(date=pd.to_datetime(scorecards["date"])).sort_values("date")
    order = frame.groupby("estimator")["realised_vol"].mean().sort_values().index
    single = frame["date"].nunique() == 1
    if frame["date"].nunique() < 3:  # a date axis of one or two points shows clock ticks
        frame["date"] = frame["date"].dt.strftime("%Y-%m-%d")
    fig = go.Figure()
    for i, name in enumerate(order):
        rows = frame[frame["estimator"] == name]
        emphasised = highlight is None or name == highlight or name == "oracle"
        fig.add_trace(
            go.Scatter(
                x=rows["date"],
                y=rows["realised_vol"],
                mode="lines+markers" if not single else "markers",
                name=name,
                opacity=1.0 if emphasised else 0.3,
                line={
                    "color": estimator_colour(name, i),
                    "dash": "dash" if name == "oracle" else "solid",
                    "width": 3 if name == highlight else 1.5,
                },
                marker={"size": 12 if single else 6},
            )
        )
    fig.update_yaxes(title_text="realised annualised vol", tickformat=".1%")
    fig.update_xaxes(title_text="scored partition (decision made H trading days earlier)")
    if frame["date"].dtype == object:  # plotly.js would read "2024-06-03" strings as dates
        fig.update_xaxes(type="category")
    return _layout(fig, "Walk-forward realised volatility of each min-variance portfolio")


def horse_race_bars(horse_race: pd.DataFrame) -> go.Figure:
    """RMS realised vol per estimator over all scored partitions, best first."""
    if horse_race.empty:
        return _empty("Horse race", "no scored partition yet")
    frame = horse_race.sort_values("rms_vol")
    fig = go.Figure(
        go.Bar(
            x=frame["estimator"],
            y=frame["rms_vol"],
            marker={"color": [estimator_colour(n, i) for i, n in enumerate(frame["estimator"])]},
            text=[f"{v:.2%}" for v in frame["rms_vol"]],
            textposition="outside",
            name="rms vol",
        )
    )
    scored = int(frame["n_scored"].max())
    fig.update_yaxes(title_text="RMS realised vol", tickformat=".1%")
    return _layout(fig, f"Horse race over {scored} scored partition(s): lower is better")


def _drawdown_paths(residual_returns: pd.DataFrame, start_date=None) -> pd.DataFrame:
    """Drawdown (<= 0) of each compounded residual path, starting at 0 on ``start_date``
    (the decision date; default the day before the first return)."""
    wealth = (1.0 + residual_returns.fillna(0.0)).cumprod()
    first = residual_returns.index[0]
    start = pd.DataFrame(
        [np.ones(wealth.shape[1])],
        columns=wealth.columns,
        index=[
            pd.Timestamp(start_date) if start_date is not None else first - pd.Timedelta(days=1)
        ],
    )
    wealth = pd.concat([start, wealth])
    return wealth / wealth.cummax() - 1.0


def anomaly_drawdowns(
    residual_returns: pd.DataFrame, flagged: pd.Series, decision_date=None
) -> go.Figure:
    """Drawdown paths of the market-residual returns after the decision date: each flagged name
    (top 20 % reconstruction error at the decision) in red, the rest in grey, group means bold."""
    if residual_returns.empty or not flagged.any():
        return _empty("Anomaly drawdowns", "no evaluated anomaly flags for this partition yet")
    paths = _drawdown_paths(residual_returns, decision_date)
    flagged = flagged.reindex(paths.columns).fillna(False).astype(bool)
    fig = go.Figure()
    for group, colour, is_flagged in (("rest", "#7f7f7f", False), ("flagged", "#d62728", True)):
        names = paths.columns[flagged == is_flagged]
        for name in names:
            fig.add_trace(
                go.Scatter(
                    x=paths.index,
                    y=paths[name],
                    mode="lines",
                    name=f"{group}: {name}",
                    legendgroup=group,
                    showlegend=False,
                    opacity=0.35,
                    line={"color": colour, "width": 1},
                )
            )
        if len(names):
            fig.add_trace(
                go.Scatter(
                    x=paths.index,
                    y=paths[names].mean(axis=1),
                    mode="lines+markers",
                    name=f"{group} mean ({len(names)} names)",
                    legendgroup=group,
                    line={"color": colour, "width": 4},
                )
            )
    when = f" after {pd.Timestamp(decision_date):%Y-%m-%d}" if decision_date is not None else ""
    fig.update_yaxes(title_text="drawdown of the residual path", tickformat=".1%")
    return _layout(fig, f"Anomaly groups' idiosyncratic drawdowns{when}")


def _corr(cov: np.ndarray) -> np.ndarray:
    sd = np.sqrt(np.diag(cov))
    return cov / np.outer(sd, sd)


def cvae_regime_shift(
    cov_expansion: np.ndarray, cov_contraction: np.ndarray, tickers: list[str]
) -> go.Figure:
    """How the CVAE's covariance moves between regimes: the correlation shift
    (contraction - expansion) and each stock's annualised vol in both regimes."""
    shift = _corr(cov_contraction) - _corr(cov_expansion)
    np.fill_diagonal(shift, 0.0)
    vol0 = np.sqrt(np.diag(cov_expansion) * 252.0)
    vol1 = np.sqrt(np.diag(cov_contraction) * 252.0)
    bound = float(np.abs(shift).max()) or 1.0
    fig = make_subplots(
        rows=1,
        cols=2,
        column_widths=[0.5, 0.5],
        horizontal_spacing=0.2,
        subplot_titles=(
            "correlation shift: contraction - expansion",
            "annualised vol per stock",
        ),
    )
    fig.add_trace(
        go.Heatmap(
            z=shift,
            x=tickers,
            y=tickers,
            zmin=-bound,
            zmax=bound,
            colorscale="RdBu_r",
            colorbar={"title": {"text": "shift"}, "x": 0.42, "thickness": 14},
            name="correlation shift",
        ),
        row=1,
        col=1,
    )
    top = float(max(vol0.max(), vol1.max())) * 1.05
    fig.add_trace(
        go.Scatter(
            x=[0, top],
            y=[0, top],
            mode="lines",
            line={"color": "#999", "dash": "dot"},
            name="no change",
        ),
        row=1,
        col=2,
    )
    fig.add_trace(
        go.Scatter(
            x=vol0,
            y=vol1,
            mode="markers",
            text=tickers,
            name="stocks",
            marker={"size": 9, "color": "#9467bd"},
            hovertemplate="%{text}: %{x:.1%} -> %{y:.1%}<extra></extra>",
        ),
        row=1,
        col=2,
    )
    fig.update_yaxes(autorange="reversed", row=1, col=1)
    fig.update_xaxes(title_text="expansion", tickformat=".0%", row=1, col=2)
    fig.update_yaxes(title_text="contraction", tickformat=".0%", row=1, col=2)
    return _layout(fig, "CVAE: covariance shift between regimes", height=520)


def minvar_weights(weights: pd.DataFrame, estimators: list[str]) -> go.Figure:
    """Min-variance weights per stock of the chosen estimators (long: estimator, ticker, weight)."""
    fig = go.Figure()
    for i, name in enumerate(estimators):
        rows = weights[weights["estimator"] == name]
        fig.add_trace(
            go.Bar(
                x=rows["ticker"],
                y=rows["weight"],
                name=name,
                marker={"color": estimator_colour(name, i)},
            )
        )
    fig.update_yaxes(title_text="weight", tickformat=".0%")
    fig.update_layout(barmode="group")
    return _layout(fig, "Global min-variance weights")
