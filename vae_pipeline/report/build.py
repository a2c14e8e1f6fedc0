"""From one partition's stored tables to the report's figures, tables and headline numbers.

``build_report`` is what the report asset calls; the Streamlit app calls the same pieces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from vae_pipeline.core.embedding import UNKNOWN_SECTOR, sector_silhouette
from vae_pipeline.report import figures
from vae_pipeline.report.compute import (
    anomaly_residuals,
    cvae_regime_covariances,
)
from vae_pipeline.report.data import PartitionData

# Figure key -> (section heading, one-line reading guide). Order = order in the report.
FIGURES = {
    "training_loss": ("Training", "Per-epoch loss of the VAE (solid) and CVAE (dashed)."),
    "beta_tradeoff": (
        "Beta trade-off",
        "Refits of the VAE's config at several beta on its window: a larger beta buys a "
        "smaller KL (fewer active latents) with a larger reconstruction error.",
    ),
    "latent_trajectories": (
        "Latent factors",
        "Posterior-mean factor series over the training window beside the observables.",
    ),
    "correlation_heatmap": (
        "What the latents mean",
        "|corr| of each latent with the market, the volatility index and the macro slope.",
    ),
    "factor_recovery": (
        "True-factor recovery",
        "R^2 of each true factor on all latents (synthetic data only), VAE beside PCA(k) and "
        "factor analysis(k) on the same window.",
    ),
    "embedding_map": (
        "Stock map",
        "Each stock's loadings on the latents in 2-D (UMAP by default), beside the PCA map of "
        "the same loadings; the sector silhouette (1 = tight, separated sectors) of each.",
    ),
    "realised_vol": (
        "Min-variance horse race",
        "Out-of-sample realised vol of each estimator's min-variance portfolio, per scored "
        "partition; the oracle uses the true covariance.",
    ),
    "horse_race_bars": ("Walk-forward summary", "RMS realised vol over all scored partitions."),
    "anomaly_drawdowns": (
        "Anomalies",
        "Names flagged at the decision date (top 20 % reconstruction error) against the rest: "
        "drawdowns of their market-residual paths over the holding period.",
    ),
    "cvae_regime_shift": (
        "CVAE regimes",
        "The CVAE's covariance decoded under each regime label.",
    ),
}


# The sections every stored partition draws (the beta trade-off needs an on-demand beta_sweep,
# the true-factor recovery a synthetic source): the report asset's check requires them.
REQUIRED_SECTIONS = [key for key in FIGURES if key not in ("beta_tradeoff", "factor_recovery")]


@dataclass
class Report:
    """What the HTML writer, the asset metadata and the app need."""

    day: pd.Timestamp
    figures: dict[str, go.Figure]
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    numbers: dict[str, float] = field(default_factory=dict)


def scorecard_of_day(data: PartitionData) -> pd.DataFrame:
    rows = data.scorecards[pd.to_datetime(data.scorecards["date"]) == data.day]
    return rows.sort_values("realised_vol")[["estimator", "realised_vol", "predicted_vol"]]


def histories(data: PartitionData) -> dict[str, pd.DataFrame]:
    return {name: model.history for name, model in data.models.items()}


def anomaly_frames(data: PartitionData) -> tuple[pd.DataFrame, pd.Series]:
    """Residual returns after the decision date and the decision's flags (empty if none)."""
    decision = data.decision_date
    if decision is None or data.returns.empty or "market" not in data.observables:
        return pd.DataFrame(), pd.Series(dtype=bool)
    flags = data.anomalies.set_index("ticker")["decision_flagged"].astype(bool)
    tickers = [t for t in flags.index if t in data.returns.columns]
    resid = anomaly_residuals(
        data.returns[tickers], data.observables["market"], decision, data.day, data.window
    )
    return resid, flags.reindex(resid.columns).fillna(False)


def regime_shift_figure(data: PartitionData, seed: int = 42) -> go.Figure:
    if "cvae" not in data.models or "regime" not in data.observables:
        return figures._empty("CVAE regimes", "no CVAE stored for this partition")
    regimes = data.observables["regime"].reindex(data.latents.index)
    if regimes.isna().any():
        return figures._empty("CVAE regimes", "regime labels missing in the window")
    cov0, cov1, tickers = cvae_regime_covariances(
        data.models["cvae"], data.returns, regimes.astype(int), seed=seed
    )
    return figures.cvae_regime_shift(cov0, cov1, tickers)


def stored_maps(data: PartitionData) -> dict[str, pd.DataFrame]:
    """method -> stored map (ticker, x, y, sector): the headline map first, then its PCA
    baseline when one is stored; empty when no map is stored."""
    frames = [data.embedding, data.embedding_baseline]
    return {
        str(frame["method"].iloc[0]): frame[["ticker", "x", "y", "sector"]]
        for frame in frames
        if frame is not None and not frame.empty
    }


def map_silhouette(frame: pd.DataFrame) -> float | None:
    """Sector silhouette of a stored map over its names with a known sector (None with fewer
    than two known sectors, as the asset's own metadata says)."""
    known = frame[frame["sector"].notna() & (frame["sector"] != UNKNOWN_SECTOR)]
    if not 2 <= known["sector"].nunique() <= len(known) - 1:
        return None
    coords = known.set_index("ticker")[["x", "y"]]
    return sector_silhouette(coords, known.set_index("ticker")["sector"])


def build_report(data: PartitionData, seed: int = 42) -> Report:
    """All figures of partition ``data.day`` (the beta trade-off when a sweep is stored)."""
    sweep = data.sweep
    figs: dict[str, go.Figure] = {}
    figs["training_loss"] = figures.training_loss(histories(data))
    if sweep is not None and len(sweep):
        beta = data.models["vae"].config.beta if "vae" in data.models else None
        figs["beta_tradeoff"] = figures.beta_tradeoff(sweep, chosen_beta=beta)
    figs["latent_trajectories"] = figures.latent_trajectories(data.latents, data.observables)
    figs["correlation_heatmap"] = figures.correlation_heatmap(data.abs_corr)
    if not data.recovery.empty:
        figs["factor_recovery"] = figures.factor_recovery(data.recovery)
    maps = stored_maps(data)
    if maps:
        scores = {method: map_silhouette(frame) for method, frame in maps.items()}
        figs["embedding_map"] = figures.embedding_maps(maps, scores)
    figs["realised_vol"] = figures.realised_vol(data.scorecards)
    figs["horse_race_bars"] = figures.horse_race_bars(data.horse_race)
    resid, flags = anomaly_frames(data)
    figs["anomaly_drawdowns"] = figures.anomaly_drawdowns(resid, flags, data.decision_date)
    figs["cvae_regime_shift"] = regime_shift_figure(data, seed=seed)
    card = scorecard_of_day(data)
    tables = {"scorecard": card, "horse_race": data.horse_race}
    if maps:
        tables["sector_silhouette"] = pd.DataFrame(
            {"method": list(scores), "silhouette": [scores[m] for m in scores]}
        ).astype({"silhouette": float})
    if not data.recovery.empty:
        tables["recovery_r2"] = data.recovery.rename_axis(
            index="factor", columns=None
        ).reset_index()
    numbers = headline(data, card)
    if maps:
        numbers.update({f"silhouette_{m}": float(v) for m, v in scores.items() if v is not None})
    return Report(day=data.day, figures=figs, tables=tables, numbers=numbers)


def headline(data: PartitionData, card: pd.DataFrame) -> dict[str, float]:
    """Plottable floats for the asset's metadata (one series per key in the Dagster UI)."""
    vol = card.set_index("estimator")["realised_vol"] if len(card) else pd.Series(dtype=float)
    numbers = {f"realised_vol_{k}": float(v) for k, v in vol.items()}
    if {"vae", "ledoit_wolf"} <= set(vol.index):
        numbers["vae_minus_ledoit_wolf"] = float(vol["vae"] - vol["ledoit_wolf"])
    corr = data.abs_corr
    for target in ("market", "volatility_change", "macro_slope_change"):
        if target in corr:
            numbers[f"best_abs_corr_{target}"] = float(corr[target].max())
    if "later_drawdown" in data.anomalies and data.anomalies["decision_flagged"].notna().any():
        a = data.anomalies
        flagged = a["decision_flagged"].astype(bool)
        numbers["drawdown_flagged"] = float(a.loc[flagged, "later_drawdown"].mean())
        numbers["drawdown_rest"] = float(a.loc[~flagged, "later_drawdown"].mean())
    return {k: v for k, v in numbers.items() if np.isfinite(v)}


def report_page(report: Report, lead: str = "") -> str:
    """The self-contained HTML page of ``report``."""
    from vae_pipeline.report.html import render_report

    sections = [
        (key, FIGURES.get(key, (key, ""))[0], FIGURES.get(key, ("", ""))[1], fig)
        for key, fig in report.figures.items()
    ]
    return render_report(
        title=f"vae_pipeline report: {report.day:%Y-%m-%d}",
        lead=lead,
        sections=sections,
        tables=report.tables,
        footer="Generated by the vae_pipeline `report` asset; plotly.js is inlined, so this "
        "file opens offline.",
    )
