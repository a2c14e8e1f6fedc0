"""The bad-input matrix's harness: the good partition, a row, running a row in process or as a
subprocess, and what every refused or documented row must satisfy (see ``__init__.py``)."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
)

from vae_pipeline.core.calendar import trading_days
from vae_pipeline.core.synthetic import generate_panel
from vae_pipeline.pipeline.definitions import build_definitions
from vae_pipeline.pipeline.runner import materialise_day
from vae_pipeline.settings import PipelineSettings

REPO = Path(__file__).resolve().parents[3]
START = "2024-01-02"
D0 = "2024-02-08"  # the good partition, materialised end to end
D1 = "2024-02-09"  # the bad partition: the file's last day, where most defects sit
AFTER = "2024-02-12"  # the first trading day after the file ends
SHORT = "2024-01-24"  # its W = 20 window would start before the file's first return
N_NAMES = 30
T = "S004"  # the ticker most defects hit
ENV = {
    "VAE_PIPELINE_SOURCE": "csv",
    "VAE_PIPELINE_START": START,
    "VAE_PIPELINE_WINDOW": "20",
    "VAE_PIPELINE_HORIZON": "5",
    "VAE_PIPELINE_EPOCHS": "20",
    "VAE_PIPELINE_MIN_NAMES": "5",
    "VAE_PIPELINE_SEED": "42",
}
INGEST = ["raw_returns", "market_observables"]


# ------------------------------------------------------------------ the good partition


def good_prices() -> pd.DataFrame:
    """Wide prices (a ``date`` column, then 30 tickers) from the seed-42 synthetic returns."""
    days = trading_days(START, D1)
    panel = generate_panel(start=START, n_days=len(days), n_names=N_NAMES, seed=42)
    growth = np.cumprod(1.0 + panel.returns.to_numpy(), axis=0)
    prices = pd.DataFrame(100.0 * growth / growth[0], columns=panel.returns.columns).round(6)
    prices.insert(0, "date", days.strftime("%Y-%m-%d"))
    return prices


@dataclass
class Good:
    dir: Path
    prices: pd.DataFrame = field(repr=False)
    csv: Path
    db: Path
    env: dict = field(repr=False)
    graph: object = field(repr=False)
    d1_returns: pd.DataFrame = field(repr=False)  # what the good file gives on D1


def snapshot(db, skip_day=None, skip_ticker=None, partitioned_only=False, skip_tables=()) -> dict:
    """A hash of every table's rows in order (optionally leaving out a day, a ticker, tables)."""
    out = {}
    with duckdb.connect(str(db), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables order by all"
        ).fetchall()
        for schema, table in tables:
            columns = {c[0] for c in con.execute(f'describe "{schema}"."{table}"').fetchall()}
            if (partitioned_only and "date" not in columns) or table in skip_tables:
                continue
            where, params = ["true"], []
            if skip_day is not None and "date" in columns:
                where.append("date <> ?")
                params.append(pd.Timestamp(skip_day).to_pydatetime())
            if skip_ticker is not None and "ticker" in columns:
                where.append("ticker <> ?")
                params.append(skip_ticker)
            rows = con.execute(
                f'select * from "{schema}"."{table}" where {" and ".join(where)} order by all',
                params,
            ).fetchall()
            out[f"{schema}.{table}"] = hashlib.sha256(repr(rows).encode()).hexdigest()
    return out


def rows_on(db, table: str, day) -> pd.DataFrame:
    """The rows of partition ``day`` (none for a table not created, or not partitioned)."""
    with duckdb.connect(str(db), read_only=True) as con:
        found = {
            t[0] for t in con.execute("select table_name from information_schema.tables").fetchall()
        }
        if table not in found:
            return pd.DataFrame()
        columns = {c[0] for c in con.execute(f'describe main."{table}"').fetchall()}
        if "date" not in columns:
            return pd.DataFrame()
        return con.execute(
            f'select * from main."{table}" where date = ?', [pd.Timestamp(day).to_pydatetime()]
        ).df()


# ------------------------------------------------------------------ a row


@dataclass
class Row:
    """One bad input. ``edit`` changes the good price frame, ``make`` writes a whole file;
    ``needles`` must all appear in what the user sees; ``checks`` are the failed blocking
    checks expected and ``blocked`` the assets whose materialisation for ``day`` they stop
    (with everything downstream). ``writes`` = the run may (re)store valid upstream rows of
    ``day``; ``documented`` = a cleaning rule handles the defect (see ``verify``)."""

    id: str
    entry: str = "job"
    edit: Callable | None = None
    make: Callable | None = None
    env: dict = field(default_factory=dict)
    day: str = D1
    needles: tuple[str, ...] = ()
    checks: tuple[tuple[str, str], ...] = ()
    blocked: tuple[str, ...] = ("raw_returns", "market_observables")
    writes: bool = False
    select: tuple[str, ...] | None = None  # a job row's asset selection (default: all)
    run_config: dict | None = None
    skip_ticker: str | None = None
    skip_tables: tuple[str, ...] = ()
    documented: Callable | None = None


def prepare(row: Row, good: Good, folder: Path) -> dict:
    """A copy of the good database and the row's bad file; returns the row's environment."""
    db = folder / "db.duckdb"
    shutil.copy(good.db, db)
    prices = folder / f"{row.id}.csv"
    if row.edit is not None:
        row.edit(good.prices.copy()).to_csv(prices, index=False)
    elif row.make is not None:
        row.make(good, prices)
    else:
        prices = good.csv
    return {**good.env, "VAE_PIPELINE_DB": str(db), "VAE_PIPELINE_PRICES": str(prices), **row.env}


# ------------------------------------------------------------------ running a row in process


@dataclass
class Outcome:
    text: str = ""
    failed_checks: set = field(default_factory=set)
    materialised: dict = field(default_factory=dict)  # (asset, partition) -> metadata
    success: bool = True


def collect(instance: DagsterInstance, outcome: Outcome) -> Outcome:
    """Failed checks (with their problems), step failures and materialisations of every run."""
    texts = [outcome.text]
    for run in instance.get_runs():
        for record in instance.all_logs(run.run_id):
            event = record.dagster_event
            if event is None:
                continue
            data = event.event_specific_data
            failed = event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION and not (
                data.passed or data.severity == AssetCheckSeverity.WARN  # drift alerts only
            )
            if failed:
                outcome.failed_checks.add((data.asset_key.to_user_string(), data.check_name))
                texts.append(str(data.metadata["problems"].value))
            elif event.event_type in (
                DagsterEventType.STEP_FAILURE,
                DagsterEventType.RESOURCE_INIT_FAILURE,
            ):
                outcome.success = False
                error = data.error
                while error is not None:
                    texts.append(error.message)
                    error = error.cause
            elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
                mat = data.materialization
                outcome.materialised[(mat.asset_key.to_user_string(), mat.partition)] = mat.metadata
    outcome.text = "\n".join(texts)
    return outcome


def run_in_process(row: Row, env: dict, monkeypatch) -> Outcome:
    if row.entry == "settings":
        for key in [k for k in os.environ if k.startswith("VAE_PIPELINE_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        with pytest.raises(ValueError) as err:
            build_definitions()
        return Outcome(text=str(err.value), success=False)
    settings = PipelineSettings.from_env(env)
    defs = build_definitions(settings)
    instance = DagsterInstance.ephemeral()
    outcome = Outcome()
    try:
        if row.entry == "runner":
            materialise_day(defs, row.day, settings, instance=instance)
        else:
            job = defs.resolve_job_def("daily_refit")
            result = job.execute_in_process(
                partition_key=row.day,
                instance=instance,
                raise_on_error=False,
                run_config=row.run_config,
                asset_selection=[AssetKey(a) for a in row.select] if row.select else None,
            )
            outcome.success = result.success
    except Exception as exc:  # the entry point refused: its message is what the user sees
        outcome.text, outcome.success = f"{type(exc).__name__}: {exc}", False
    return collect(instance, outcome)


def blocked_assets(row: Row, good: Good) -> set[str]:
    if not row.blocked:
        return set()
    keys = AssetSelection.assets(*row.blocked).downstream().resolve(good.graph)
    return {k.to_user_string() for k in keys}


def assert_earlier_partitions_untouched(row: Row, good: Good, db: Path, partitioned_only=False):
    skip = row.day if row.writes else None
    args = dict(
        skip_day=skip,
        skip_ticker=row.skip_ticker,
        partitioned_only=partitioned_only,
        skip_tables=row.skip_tables,
    )
    assert snapshot(db, **args) == snapshot(good.db, **args)


def assert_nothing_downstream(row: Row, good: Good, db: Path, outcome: Outcome | None):
    for asset in sorted(blocked_assets(row, good)):
        assert rows_on(db, asset, row.day).empty, f"{asset} stored rows for {row.day}"
        if outcome is not None:
            assert (asset, row.day) not in outcome.materialised, f"{asset} materialised"
            assert (asset, None) not in outcome.materialised, f"{asset} materialised"


# ------------------------------------------------------------------ subprocess rows


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def command(tool: str, row: Row) -> list[str]:
    if tool == "dagster":
        return [_bin("dagster"), "asset", "materialize", "-m", "vae_pipeline.pipeline.definitions",
                "--select", "*", "--partition", row.day]  # fmt: skip
    if tool == "vae":
        return [_bin("vae"), "run", "--day", row.day]
    return [_bin("vae"), "train", "--epochs", "abc", "--no-progress"]


# ------------------------------------------------------------------ the in-process check


def check_in_process(row: Row, good: Good, tmp_path: Path, monkeypatch) -> None:
    env = prepare(row, good, tmp_path)
    outcome = run_in_process(row, env, monkeypatch)
    db = Path(env["VAE_PIPELINE_DB"])
    if row.documented is not None:
        row.documented(outcome, good, db)
        assert not outcome.failed_checks, outcome.failed_checks
        full_graph = row.select is None  # scoring D1 updates the unpartitioned roll-ups
        assert_earlier_partitions_untouched(row, good, db, partitioned_only=full_graph)
        return
    assert not outcome.success
    for needle in row.needles:
        assert needle in outcome.text, f"{needle!r} not in:\n{outcome.text[-3000:]}"
    assert outcome.failed_checks == set(row.checks), outcome.failed_checks
    if row.entry == "job" and (row.edit is not None or row.make is not None) and not row.checks:
        assert f"{row.id}.csv" in outcome.text  # the source's refusal names the file
    assert_nothing_downstream(row, good, db, outcome)
    assert_earlier_partitions_untouched(row, good, db)
