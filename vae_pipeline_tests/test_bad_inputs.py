"""The bad-input matrix: one bad input per row, fed through the real entry points.

A good partition (D0) is materialised end to end once from a seed-42 CSV (30 names, W = 20,
H = 5); each row then gets its own copy of that DuckDB file and a copy of the CSV with one
defect, usually in its last day (D1), and runs:

- ``job``: the ``daily_refit`` job for one partition (what the schedule and
  ``dagster asset materialize --select '*' --partition D`` run), in process;
- ``runner``: ``runner.materialise_day`` (what ``vae run`` / ``make run`` run: the raw history,
  the decision date d-H, then the day);
- ``settings``: ``build_definitions()`` reading the ``VAE_PIPELINE_*`` environment (what every
  entry point does first);

and a few rows again as real subprocesses (``dagster asset materialize`` and ``vae``).

A refused row must name the problem (a failed blocking check with its problems, or the
source's error naming the file, the ticker and the date), materialise nothing downstream of
the refusal for the bad partition, and leave every stored row of the earlier partitions
exactly as it was. A few defects are cleaned by documented rules instead of refused (the
README's "Real data" section); their rows assert the documented result and that it is
visible in the ``raw_returns`` metadata.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
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

from vae_pipeline.core.calendar import shift_trading_days, trading_days
from vae_pipeline.core.synthetic import generate_panel
from vae_pipeline.pipeline.definitions import build_definitions
from vae_pipeline.pipeline.runner import DECISION_ASSETS, materialise_day
from vae_pipeline.settings import PipelineSettings
from vae_pipeline.sources import make_source

REPO = Path(__file__).resolve().parents[1]
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


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Good:
    """D0 materialised end to end (history, decision D0-H, the day) plus the decision chain
    of D1-H, so a row that passes can score D1."""
    folder = tmp_path_factory.mktemp("bad_inputs")
    prices = good_prices()
    csv = folder / "good.csv"
    prices.to_csv(csv, index=False)
    env = {**ENV, "VAE_PIPELINE_PRICES": str(csv), "VAE_PIPELINE_DB": str(folder / "good.duckdb")}
    settings = PipelineSettings.from_env(env)
    defs = build_definitions(settings)
    instance = DagsterInstance.ephemeral()
    assert all(r.success for r in materialise_day(defs, D0, settings, instance=instance))
    decision = f"{shift_trading_days(D1, -settings.evaluation.horizon):%Y-%m-%d}"
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        partition_key=decision,
        instance=instance,
        asset_selection=[AssetKey(a) for a in DECISION_ASSETS],
    )
    assert result.success
    d1 = make_source(settings).returns(D1, D1)
    return Good(folder, prices, csv, settings.storage.db_path, env, defs.resolve_asset_graph(), d1)


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


# ------------------------------------------------------------------ the defects


def _last(frame: pd.DataFrame) -> int:
    return len(frame) - 1


def set_cell(value, ticker=T) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def edit(frame):
        frame = frame.astype({ticker: object})
        frame.loc[_last(frame), ticker] = value
        return frame

    return edit


def nan_whole_day(frame):
    frame.loc[_last(frame), frame.columns[1:]] = np.nan
    return frame


def duplicate_date(frame):
    again = frame.iloc[[-1]].copy()
    again[T] = again[T] * 1.01
    return pd.concat([frame, again], ignore_index=True)


def duplicate_ticker(frame):
    twin = frame[["S005"]].set_axis([T], axis=1)  # a second S004 column holding S005's prices
    return pd.concat([frame, twin], axis=1)


def unsorted(frame):
    return frame.sample(frac=1.0, random_state=42)


def all_missing_ticker(frame):
    frame["GHOST"] = np.nan
    return frame


def halted(frame):  # the price stops moving for the last six days: five zero returns
    frame.loc[_last(frame) - 5 :, T] = frame.loc[_last(frame) - 5, T]
    return frame


def flat_name(frame):  # a name whose price never moves, over the whole file
    frame["FLAT"] = 50.0
    return frame


def absurd_move(frame):  # +5000 % on the last day
    frame.loc[_last(frame), T] = frame.loc[_last(frame), T] * 51.0
    return frame


def wrong_layout(frame):
    return frame.rename(columns={"date": "day"})


def long_returns(value):
    """The good file as long returns (date, ticker, ret), with ``value`` for T on D1."""

    def make(good: Good, path: Path) -> None:
        wide = make_source(PipelineSettings.from_env(good.env)).panel.returns
        long = wide.rename_axis(index="date", columns="ticker").stack().rename("ret").reset_index()
        long["date"] = long["date"].dt.strftime("%Y-%m-%d")
        long["ret"] = long["ret"].map(repr).astype(object)
        long.loc[(long["date"] == D1) & (long["ticker"] == T), "ret"] = value
        long.to_csv(path, index=False)

    return make


# ------------------------------------------------------------------ documented (cleaned) rows


def raw_meta(outcome: Outcome) -> dict:
    return {k: v.value for k, v in outcome.materialised[("raw_returns", D1)].items()}


def verify_nan_one_name(outcome: Outcome, good: Good, db: Path):
    """A NaN price is 'no price that day': the name leaves D1's cross-section and its window,
    counted in the metadata, and the rest of the graph runs on 29 names."""
    assert outcome.success, outcome.text
    meta = raw_meta(outcome)
    assert meta["missing_returns"] == 1 and meta["missing_returns_example"] == f"{T} on {D1}"
    assert meta["names"] == N_NAMES - 1
    stored = rows_on(db, "raw_returns", D1)
    expected = good.d1_returns[good.d1_returns["ticker"] != T].reset_index(drop=True)
    pd.testing.assert_frame_equal(stored[["date", "ticker", "ret"]], expected, check_dtype=False)
    assert T not in set(rows_on(db, "standardised_panel", D1)["ticker"])
    assert len(rows_on(db, "standardised_panel", D1)) == N_NAMES - 1
    assert rows_on(db, "minvar_scorecard", D1)["realised_vol"].notna().all()
    assert not rows_on(db, "minvar_scorecard", D1).empty
    assert T not in set(rows_on(db, "covariance_estimates", D1)["ticker"])


def verify_absurd(outcome: Outcome, good: Good, db: Path):
    """A +5000 % day on the file's last day is a vendor error: set to 0 and counted."""
    meta = raw_meta(outcome)
    assert meta["cleaned_absurd"] == 1
    stored = rows_on(db, "raw_returns", D1).set_index("ticker")["ret"]
    assert stored[T] == 0.0 and len(stored) == N_NAMES
    others = good.d1_returns.set_index("ticker")["ret"].drop(T)
    np.testing.assert_array_equal(stored.drop(T).to_numpy(), others.to_numpy())


def verify_unsorted(outcome: Outcome, good: Good, db: Path):
    """Rows in any order are sorted (and the metadata says so): D1 is the good file's D1."""
    assert raw_meta(outcome)["file_unsorted_dates_sorted"] is True
    stored = rows_on(db, "raw_returns", D1)[["date", "ticker", "ret"]]
    pd.testing.assert_frame_equal(stored, good.d1_returns, check_dtype=False)


def verify_all_missing(outcome: Outcome, good: Good, db: Path):
    """A ticker column without any value is dropped and named in the metadata."""
    meta = raw_meta(outcome)
    assert meta["file_tickers_without_data"] == "GHOST" and meta["names"] == N_NAMES
    assert "GHOST" not in set(rows_on(db, "raw_returns", D1)["ticker"])
    assert len(rows_on(db, "standardised_panel", D1)) == N_NAMES


def verify_halted(outcome: Outcome, good: Good, db: Path):
    """A price that stops moving is stale from its fifth unchanged day: no return that day,
    counted, and the name leaves the window universe."""
    meta = raw_meta(outcome)
    assert meta["cleaned_stale"] == 1 and meta["missing_returns"] == 1
    assert T not in set(rows_on(db, "raw_returns", D1)["ticker"])
    assert len(rows_on(db, "standardised_panel", D1)) == N_NAMES - 1


# ------------------------------------------------------------------ the rows


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


ROWS = [
    # ---- values
    Row(
        "nan_one_name",
        edit=set_cell(np.nan),
        select=None,
        writes=True,
        blocked=(),
        documented=verify_nan_one_name,
    ),
    Row(
        "nan_whole_day",
        edit=nan_whole_day,
        checks=(("raw_returns", "enough_names"), ("market_observables", "observables_valid")),
        needles=("no returns on trading day 2024-02-09 (the source's data ends on 2024-02-08)",),
    ),
    Row(
        "inf_return",
        make=long_returns("inf"),
        needles=("infinite return inf for ticker S004 on 2024-02-09",),
    ),
    Row(
        "non_numeric",
        edit=set_cell("abc"),
        needles=("non-numeric price 'abc' for ticker S004 on 2024-02-09",),
    ),
    Row(
        "negative_price",
        edit=set_cell(-3.5),
        needles=("non-positive price -3.5 for ticker S004 on 2024-02-09",),
    ),
    Row(
        "zero_price",
        edit=set_cell(0.0),
        needles=("non-positive price 0 for ticker S004 on 2024-02-09",),
    ),
    Row(
        "return_below_minus_100pct",
        make=long_returns("-1.5"),
        needles=(
            "return at or below -100 % (a non-positive price): -1.5 for ticker S004 on 2024-02-09",
        ),
    ),
    Row(
        "absurd_move",
        edit=absurd_move,
        select=tuple(INGEST),
        writes=True,
        blocked=(),
        documented=verify_absurd,
    ),
    # ---- structure
    Row(
        "duplicate_dates",
        edit=duplicate_date,
        needles=("date 2024-02-09 appears 2 times with different values (e.g. ticker S004",),
    ),
    Row(
        "duplicate_tickers",
        edit=duplicate_ticker,
        needles=("column 'S004' appears 2 times (columns 6, 32)",),
    ),
    Row(
        "unsorted_dates",
        edit=unsorted,
        select=tuple(INGEST),
        writes=True,
        blocked=(),
        documented=verify_unsorted,
    ),
    Row(
        "all_missing_ticker",
        edit=all_missing_ticker,
        select=(*INGEST, "standardised_panel"),
        writes=True,
        blocked=(),
        documented=verify_all_missing,
    ),
    Row("empty_file", make=lambda good, path: path.write_text(""), needles=("the file is empty",)),
    Row(
        "missing_file",
        make=lambda good, path: None,
        needles=("VAE_PIPELINE_PRICES", "missing_file.csv: no such file"),
    ),
    Row(
        "wrong_layout",
        edit=wrong_layout,
        needles=("no 'date' column (columns: day, S000", "expected either wide prices"),
    ),
    # ---- windows and universe size
    Row(
        "window_short",
        entry="runner",
        day=SHORT,
        blocked=("standardised_panel",),
        checks=(("standardised_panel", "window_complete"),),
        needles=(
            "window holds 10 of 20 trading days; missing 10 (first 2023-12-18, last 2024-01-02)",
        ),
    ),
    Row(
        "latent_above_names",
        env={"VAE_PIPELINE_LATENT": "40"},
        writes=True,
        blocked=("standardised_panel",),
        checks=(("standardised_panel", "enough_names"),),
        needles=("30 names with a full window; need at least 41 (latent_dim=40)",),
    ),
    Row(
        "halted_name",
        edit=halted,
        select=(*INGEST, "standardised_panel"),
        writes=True,
        blocked=(),
        documented=verify_halted,
    ),
    Row(
        "constant_name",
        entry="runner",
        edit=flat_name,
        env={"VAE_PIPELINE_STALE_DAYS": "0"},
        writes=True,
        skip_ticker="FLAT",
        blocked=("standardised_panel",),
        # the runner re-ingests the file's history: FLAT's rows and the equal-weight market
        # of the earlier days are the file's; every other stored row must stay as it was
        skip_tables=("market_observables",),
        checks=(("standardised_panel", "standardised_moments"),),
        needles=("zero-variance (constant) columns: ['FLAT']",),
    ),
    # ---- configuration
    Row(
        "unknown_source",
        entry="settings",
        env={"VAE_PIPELINE_SOURCE": "bogus"},
        needles=("VAE_PIPELINE_SOURCE: Input should be 'synthetic', 'csv' or 'yfinance'",),
    ),
    Row(
        "negative_beta",
        entry="settings",
        env={"VAE_PIPELINE_BETA": "-1"},
        needles=("VAE_PIPELINE_BETA: Input should be greater than or equal to 0",),
    ),
    Row(
        "zero_epochs",
        entry="settings",
        env={"VAE_PIPELINE_EPOCHS": "0"},
        needles=("VAE_PIPELINE_EPOCHS: Input should be greater than or equal to 1",),
    ),
    Row(
        "zero_latent",
        entry="settings",
        env={"VAE_PIPELINE_LATENT": "0"},
        needles=("VAE_PIPELINE_LATENT: Input should be greater than or equal to 1",),
    ),
    Row(
        "corrupt_epochs",
        entry="settings",
        env={"VAE_PIPELINE_EPOCHS": "abc"},
        needles=("VAE_PIPELINE_EPOCHS: Input should be a valid integer",),
    ),
    Row(
        # the shared training resource refuses it before any step runs: nothing is stored
        "negative_beta_run_config",
        run_config={"resources": {"training": {"config": {"beta": -1.0}}}},
        needles=("beta", "Input should be greater than or equal to 0"),
    ),
    # ---- partitions
    Row(
        "partition_after_data",
        day=AFTER,
        checks=(("raw_returns", "enough_names"), ("market_observables", "observables_valid")),
        needles=("no returns on trading day 2024-02-12 (the source's data ends on 2024-02-09)",),
    ),
    Row(
        "partition_before_start",
        day="2023-12-01",
        needles=("Could not find a partition with key `2023-12-01`",),
    ),
]
BY_ID = {row.id: row for row in ROWS}


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


CLI_ROWS = [
    # (tool, row id, exit code or None for any non-zero, what the output must hold; None: the
    # row's own needles)
    ("dagster", "duplicate_dates", None, None),
    ("dagster", "negative_beta", None, None),
    (
        "dagster",
        "partition_after_data",
        None,
        (
            "check enough_names failed: no returns on trading "
            "day 2024-02-12 (the source's data ends on 2024-02-09)",
        ),
    ),
    (
        "vae",
        "nan_whole_day",
        1,
        (
            # the first ingest step to refuse names the day and where the data ends
            "Error: 2024-02-09 not materialised: ",
            "check ",
            "on trading day 2024-02-09 (the source's data ends on 2024-02-08)",
        ),
    ),
    (
        "vae",
        "missing_file",
        1,
        (
            "Error: 2024-02-09 not materialised: VAE_PIPELINE_PRICES",
            "missing_file.csv: no such file",
        ),
    ),
    ("vae", "unknown_source", 2, None),
    ("vae", "corrupt_epochs", 2, None),
    (
        "vae",
        "partition_before_start",
        2,
        ("Error: 2023-12-01 is before the first partition 2024-01-02 (VAE_PIPELINE_START)",),
    ),
    ("vae-train", "corrupt_epochs", 2, ("Invalid value for '--epochs'",)),
]
CLI_IDS = [f"{tool}-{row}" for tool, row, *_ in CLI_ROWS]


def _command(tool: str, row: Row) -> list[str]:
    if tool == "dagster":
        return [_bin("dagster"), "asset", "materialize", "-m", "vae_pipeline.pipeline.definitions",
                "--select", "*", "--partition", row.day]  # fmt: skip
    if tool == "vae":
        return [_bin("vae"), "run", "--day", row.day]
    return [_bin("vae"), "train", "--epochs", "abc", "--no-progress"]


@pytest.fixture(scope="module")
def cli_runs(good, tmp_path_factory):
    """Every subprocess row started at once on two workers (they overlap the in-process rows);
    each test waits for its own."""
    pool = ThreadPoolExecutor(max_workers=2)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VAE_PIPELINE_", "DAGSTER_"))}
    futures = {}
    for (tool, row_id, *_), name in zip(CLI_ROWS, CLI_IDS, strict=True):
        folder = tmp_path_factory.mktemp(name)
        (folder / "dagster_home").mkdir()
        shutil.copy(REPO / "dagster.yaml", folder / "dagster_home" / "dagster.yaml")
        env = {**base, **prepare(BY_ID[row_id], good, folder), "PYTHONUNBUFFERED": "1",
               "DAGSTER_HOME": str(folder / "dagster_home")}  # fmt: skip
        futures[name] = (folder, pool.submit(
            subprocess.run, _command(tool, BY_ID[row_id]), cwd=REPO, env=env,
            capture_output=True, text=True, timeout=300,
        ))  # fmt: skip
    yield futures
    pool.shutdown(wait=True)


# ------------------------------------------------------------------ the tests


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_in_process(row: Row, good: Good, cli_runs, tmp_path, monkeypatch):
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


@pytest.mark.parametrize(("tool", "row_id", "code", "needles"), CLI_ROWS, ids=CLI_IDS)
def test_bad_input_through_the_command_line(tool, row_id, code, needles, good, cli_runs):
    folder, future = cli_runs[f"{tool}-{row_id}"]
    done = future.result()
    output = done.stdout + done.stderr
    row = BY_ID[row_id]
    assert done.returncode != 0, output[-3000:]
    if code is not None:
        assert done.returncode == code, output[-3000:]
    for needle in needles or row.needles:
        assert needle in output, f"{needle!r} not in:\n{output[-3000:]}"
    if tool == "vae":
        assert "Traceback" not in done.stderr.split("Error:")[-1]  # the last word is one line
    db = folder / "db.duckdb"
    assert_nothing_downstream(row, good, db, None)
    assert_earlier_partitions_untouched(row, good, db)
