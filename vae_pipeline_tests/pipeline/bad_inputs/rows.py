"""Every row of the bad-input matrix, by kind: the defects, the documented (cleaned) rows'
checks, and the rows run again as subprocesses (see ``__init__.py``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from vae_pipeline.settings import PipelineSettings
from vae_pipeline.sources import make_source
from vae_pipeline_tests.pipeline.bad_inputs.harness import (
    AFTER,
    D1,
    INGEST,
    N_NAMES,
    SHORT,
    Good,
    Outcome,
    Row,
    T,
    rows_on,
)

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


VALUES = [
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
]

STRUCTURE = [
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
]

WINDOWS = [  # windows and universe size
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
]

CONFIGURATION = [
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
]

PARTITIONS = [
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

ROWS = [*VALUES, *STRUCTURE, *WINDOWS, *CONFIGURATION, *PARTITIONS]
BY_ID = {row.id: row for row in ROWS}


# ------------------------------------------------------------------ subprocess rows


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
        2,
        (
            # refused before any run: the day holds no data, and the last day that does is named
            "Error: 2024-02-09 is after the last day of the data (the prices file ends there), "
            "2024-02-08: try --day 2024-02-08",
        ),
    ),
    (
        "vae",
        "missing_file",
        2,
        ("Error: VAE_PIPELINE_PRICES", "missing_file.csv: no such file"),
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
