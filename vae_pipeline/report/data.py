"""Read one partition's stored tables through the store, on either backend.

Shared by the report asset and the Streamlit app. On the DuckDB file every read is one short
transaction (the file is never held open: DuckDB locks the whole file per process, readers
included, so a reader holding a connection would block the pipeline's writes); a read-only
store (the dashboard) waits a bounded time while a writer holds the lock.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from vae_pipeline.core.calendar import shift_trading_days
from vae_pipeline.core.training import TrainResult
from vae_pipeline.store.base import Span, Store
from vae_pipeline.store.models import ModelStore

MODEL_TABLES = {"vae": "trained_vae", "cvae": "trained_cvae"}


@dataclass
class PartitionData:
    """Everything the figures of partition ``day`` need (frames as stored, lightly reshaped)."""

    day: pd.Timestamp
    models: dict[str, TrainResult]  # "vae" / "cvae" -> the stored model
    latents: pd.DataFrame  # T x k posterior means, indexed by observation date
    observables: pd.DataFrame  # market, volatility, macro_slope, regime by date
    returns: pd.DataFrame  # wide date x ticker raw returns, from d-W-H to d
    interpretation: pd.DataFrame  # metric, method, latent, target, value
    embedding: pd.DataFrame  # the stock map: ticker, sector, x, y, method (UMAP by default)
    scorecards: pd.DataFrame  # every scored partition up to d: date, estimator, realised_vol...
    horse_race: pd.DataFrame  # the walk-forward roll-up as stored
    anomalies: pd.DataFrame  # anomaly_report rows of d
    weights: pd.DataFrame  # covariance_estimates of d: estimator, ticker, weight, predicted_vol
    sweep: pd.DataFrame | None = None  # beta_sweep of d (beta, recon, kl, active_dims), if run
    # the PCA map stored beside a UMAP one (same columns), the baseline of its silhouette
    embedding_baseline: pd.DataFrame | None = None

    @property
    def abs_corr(self) -> pd.DataFrame:
        rows = self.interpretation[self.interpretation["metric"] == "abs_corr"]
        return rows.pivot(index="latent", columns="target", values="value").reindex(
            columns=list(dict.fromkeys(rows["target"]))
        )

    @property
    def recovery(self) -> pd.DataFrame:
        rows = self.interpretation[self.interpretation["metric"] == "recovery_r2"]
        if rows.empty:
            return pd.DataFrame()
        table = rows.pivot(index="target", columns="method", values="value")
        return table.reindex(index=list(dict.fromkeys(rows["target"])))

    @property
    def window(self) -> int:
        """W: the trading days of the latent window (the training window of the partition)."""
        return len(self.latents)

    @property
    def decision_date(self) -> pd.Timestamp | None:
        dates = self.anomalies.get("decision_date", pd.Series(dtype="datetime64[ns]")).dropna()
        return pd.Timestamp(dates.iloc[0]) if len(dates) else None


def stored_days(store: Store) -> list[pd.Timestamp]:
    """Partitions with latent factors stored, newest first (empty when nothing is stored)."""
    if not store.exists():
        return []
    rows = store.read("latent_factors")
    if rows.empty:
        return []
    return sorted(pd.to_datetime(rows["date"]).unique(), reverse=True)


def read_partition(store: Store, day) -> PartitionData:
    """Read partition ``day``: its own rows, every scored partition up to it, and the raw
    returns / observables from the start of the decision date's window (W = the latent
    window's length, the decision date as stored) up to ``day``."""
    day = pd.Timestamp(day).normalize()
    today = Span.days(day, day)
    latents = store.read("latent_factors", today)
    if latents.empty:
        raise LookupError(
            f"no latent factors stored for {day:%Y-%m-%d} in {store.describe()}: "
            "materialise it first"
        )
    anomalies = store.read("anomaly_report", today)
    scorecards = store.read("minvar_scorecard", Span(pd.Timestamp("1900-01-01"), today.end))
    if len(scorecards):
        scorecards = scorecards.sort_values("date", kind="stable", ignore_index=True)
    span = Span.days(_history_start(day, latents, anomalies, scorecards), day)
    models = ModelStore(store)
    found = {name: models.load_models(table, today) for name, table in MODEL_TABLES.items()}
    observables = store.read("market_observables", span)
    returns = store.read("raw_returns", span)
    interpretation = store.read("factor_interpretation", today)
    embedding, baseline = split_maps(store.read("stock_embedding", today))
    horse_race = store.read("horse_race")
    weights = store.read("covariance_estimates", today)
    sweep = store.read("beta_sweep", today)
    if len(weights):
        weights = weights[["estimator", "ticker", "weight", "predicted_vol"]]
    latents = latents[["obs_date", "latent", "value"]]
    wide_latents = latents.pivot(index="obs_date", columns="latent", values="value").sort_index()
    wide_latents.index = pd.DatetimeIndex(wide_latents.index, name="date")
    if not observables.empty:
        observables = observables.set_index("date").sort_index()
    wide_returns = (
        returns.pivot(index="date", columns="ticker", values="ret").sort_index()
        if not returns.empty
        else pd.DataFrame()
    )
    if not wide_returns.empty:
        wide_returns.index = pd.DatetimeIndex(wide_returns.index, name="date")
    return PartitionData(
        day=day,
        models={name: next(iter(m.values())) for name, m in found.items() if m},
        latents=wide_latents,
        observables=observables,
        returns=wide_returns,
        interpretation=interpretation,
        embedding=embedding,
        scorecards=scorecards,
        horse_race=horse_race,
        anomalies=anomalies,
        weights=weights,
        sweep=sweep.drop(columns="date") if len(sweep) else None,
        embedding_baseline=baseline,
    )


def split_maps(rows: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """``stock_embedding`` rows as (the map, its PCA baseline or None): the map is the
    non-PCA one when the asset stored two (a UMAP map with its PCA baseline), else PCA."""
    if rows.empty or "method" not in rows:
        return rows, None
    if rows["method"].nunique() == 1:
        return rows.reset_index(drop=True), None
    main = rows["method"] != "pca"
    return rows[main].reset_index(drop=True), rows[~main].reset_index(drop=True)


def _history_start(day, latents, anomalies, scorecards) -> pd.Timestamp:
    """First day of the decision date's window (the day's own window when nothing is scored)."""
    window = latents["obs_date"].nunique()
    decisions = []
    if "decision_date" in anomalies:
        decisions += list(anomalies["decision_date"].dropna())
    if "decision_date" in scorecards:
        todays = scorecards[pd.to_datetime(scorecards["date"]) == day]
        decisions += list(todays["decision_date"].dropna())
    first = min([day, *map(pd.Timestamp, decisions)])
    return shift_trading_days(first, -(window - 1))
