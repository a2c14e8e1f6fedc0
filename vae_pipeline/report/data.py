"""Read one partition's stored tables from the DuckDB file, in one short connection.

Shared by the report asset and the Streamlit app. DuckDB locks the whole file per process,
readers included, so a reader that holds a connection blocks the pipeline's writes: every
read here opens a connection, runs a handful of partition-filtered queries and closes it
(milliseconds), retrying briefly while a writer holds the lock.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from vae_pipeline.core.calendar import shift_trading_days

LOCK_MESSAGES = ("lock", "Conflicting lock")


def _is_lock_error(exc: Exception) -> bool:
    return any(m.lower() in str(exc).lower() for m in LOCK_MESSAGES)


@contextmanager
def connect(
    db_path: str | Path, read_only: bool = True, timeout: float = 30.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A short-lived connection; retries for up to ``timeout`` s while another process
    holds the file's lock (the pipeline writing), then raises the lock error."""
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            con = duckdb.connect(str(db_path), read_only=read_only)
            break
        except (duckdb.IOException, duckdb.ConnectionException) as exc:
            if not _is_lock_error(exc) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 1.5, 0.5)
    try:
        yield con
    finally:
        con.close()


@dataclass
class PartitionData:
    """Everything the figures of partition ``day`` need (frames as stored, lightly reshaped)."""

    day: pd.Timestamp
    models: dict[str, pd.Series]  # "vae" / "cvae" -> the stored model row (weights, history)
    latents: pd.DataFrame  # T x k posterior means, indexed by observation date
    observables: pd.DataFrame  # market, volatility, macro_slope, regime by date
    returns: pd.DataFrame  # wide date x ticker raw returns, from d-W-H to d
    interpretation: pd.DataFrame  # metric, method, latent, target, value
    embedding: pd.DataFrame  # ticker, sector, x, y, method
    scorecards: pd.DataFrame  # every scored partition up to d: date, estimator, realised_vol...
    horse_race: pd.DataFrame  # the walk-forward roll-up as stored
    anomalies: pd.DataFrame  # anomaly_report rows of d
    weights: pd.DataFrame  # covariance_estimates of d: estimator, ticker, weight, predicted_vol

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


def _tables(con) -> set[str]:
    return {
        r[0]
        for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'main'"
        ).fetchall()
    }


def _rows(con, tables: set[str], sql: str, table: str, params: list) -> pd.DataFrame:
    if table not in tables:
        return pd.DataFrame()
    return con.execute(sql.format(table=f'main."{table}"'), params).df()


def stored_days(db_path: str | Path, timeout: float = 30.0) -> list[pd.Timestamp]:
    """Partitions with latent factors stored, newest first (empty when nothing is stored)."""
    with connect(db_path, timeout=timeout) as con:
        if "latent_factors" not in _tables(con):
            return []
        days = con.execute(
            "select distinct date from main.latent_factors order by date desc"
        ).fetchall()
    return [pd.Timestamp(d[0]) for d in days]


def read_partition(
    db_path: str | Path, day, timeout: float = 30.0, read_only: bool = True
) -> PartitionData:
    """Read partition ``day`` in one connection: its own rows, every scored partition up to
    it, and the raw returns / observables from the start of the decision date's window
    (W = the latent window's length, the decision date as stored) up to ``day``."""
    day = pd.Timestamp(day)
    at_day = [day.to_pydatetime()]
    with connect(db_path, read_only=read_only, timeout=timeout) as con:
        tables = _tables(con)
        q = lambda sql, table, params=at_day: _rows(con, tables, sql, table, params)  # noqa: E731
        latents = q("select obs_date, latent, value from {table} where date = ?", "latent_factors")
        if latents.empty:
            raise LookupError(f"no latent factors stored for {day:%Y-%m-%d}: materialise it first")
        anomalies = q("select * from {table} where date = ?", "anomaly_report")
        scorecards = q("select * from {table} where date <= ? order by date", "minvar_scorecard")
        span = [_history_start(day, latents, anomalies, scorecards).to_pydatetime(), at_day[0]]
        models = {
            name: q("select * from {table} where date = ?", f"trained_{name}")
            for name in ("vae", "cvae")
        }
        observables = q(
            "select * from {table} where date between ? and ?", "market_observables", span
        )
        returns = q("select * from {table} where date between ? and ?", "raw_returns", span)
        interpretation = q("select * from {table} where date = ?", "factor_interpretation")
        embedding = q("select * from {table} where date = ?", "stock_embedding")
        horse_race = q("select * from {table}", "horse_race", [])
        weights = q(
            "select estimator, ticker, weight, predicted_vol from {table} where date = ?",
            "covariance_estimates",
        )
    wide_latents = latents.pivot(index="obs_date", columns="latent", values="value").sort_index()
    wide_latents.index = pd.DatetimeIndex(wide_latents.index, name="date")
    if not observables.empty:
        observables = observables.assign(date=pd.to_datetime(observables["date"]))
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
        models={k: v.iloc[0] for k, v in models.items() if len(v)},
        latents=wide_latents,
        observables=observables,
        returns=wide_returns,
        interpretation=interpretation,
        embedding=embedding,
        scorecards=scorecards,
        horse_race=horse_race,
        anomalies=anomalies,
        weights=weights,
    )


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
