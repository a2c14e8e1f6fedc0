"""Faults: a run killed mid-training or mid-write, and a corrupt or foreign DuckDB file."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance

from vae_pipeline.core.calendar import trading_days
from vae_pipeline.pipeline.definitions import build_definitions
from vae_pipeline.pipeline.runner import history_start, materialise_day
from vae_pipeline.store.connection import DatabaseFileError, connect
from vae_pipeline_tests.conftest import DAY, tiny_settings

REPO = Path(__file__).resolve().parents[2]


def _env(db, **extra):
    env = {
        **os.environ,
        "VAE_PIPELINE_DB": str(db),
        "VAE_PIPELINE_START": "2024-01-02",
        "VAE_PIPELINE_WINDOW": "60",
        "VAE_PIPELINE_HORIZON": "5",
        "VAE_PIPELINE_MIN_NAMES": "5",
        "VAE_PIPELINE_N_NAMES": "20",
        "VAE_PIPELINE_EPOCHS": "30",
        "PYTHONUNBUFFERED": "1",
    }
    env.update({f"VAE_PIPELINE_{k}": str(v) for k, v in extra.items()})
    return env


def _run_until(db, marker: str, delay: float = 0.0, **extra) -> bool:
    """Start a child materialising DAY; SIGKILL it ``delay`` s after ``marker`` is logged.
    Returns False when the child finished before the marker appeared."""
    child = subprocess.Popen(
        [sys.executable, "-m", "vae_pipeline_tests.fault_runner", DAY],
        cwd=REPO,
        env=_env(db, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 240
    for line in child.stderr:
        if marker in line:
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
            child.wait()
            return True
        if time.monotonic() > deadline:
            break
    child.kill()
    child.wait()
    return False


def _counts(db) -> dict[str, int]:
    with connect(db, read_only=True) as con:
        tables = [
            t[0] for t in con.execute("select table_name from information_schema.tables").fetchall()
        ]
        return {t: con.execute(f'select count(*) from main."{t}"').fetchall()[0][0] for t in tables}


def _rerun_succeeds(db):
    settings = tiny_settings(db)
    results = materialise_day(
        build_definitions(settings), DAY, settings, instance=DagsterInstance.ephemeral()
    )
    assert all(r.success for r in results)


# slow (~40-75 s on 2 cores): run by .ci/run, outside the 10-minute `make test`
@pytest.mark.slow
def test_sigkill_mid_training_leaves_a_consistent_file(tmp_path):
    db = tmp_path / "kill_train.duckdb"
    assert _run_until(db, 'Started execution of step "trained_vae"', delay=1.0, EPOCHS=3000)
    counts = _counts(db)  # readable, and nothing of the killed step
    assert counts["raw_returns"] > 0
    assert "trained_vae" not in counts or counts["trained_vae"] == 0 or counts["trained_vae"] == 1
    _rerun_succeeds(db)
    after = _counts(db)
    assert after["trained_vae"] == 2 and after["minvar_scorecard"] > 0


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2])
def test_sigkill_mid_write_is_all_or_nothing(tmp_path, delay):
    db = tmp_path / f"kill_write_{delay}.duckdb"
    # 1500 names x ~70 days: the history insert is large enough to be caught in flight.
    killed = _run_until(db, 'Yielded output "result" of type "Any"', delay=delay, N_NAMES=1500)
    assert killed
    if not db.exists():
        return  # killed before the first connection: nothing written, nothing to corrupt
    history = len(trading_days(history_start(pd.Timestamp(DAY), tiny_settings(db)), DAY))
    with connect(db, read_only=True) as con:
        tables = {
            t[0] for t in con.execute("select table_name from information_schema.tables").fetchall()
        }
        if "raw_returns" in tables:
            days, rows = con.execute(
                "select count(distinct date), count(*) from main.raw_returns"
            ).fetchall()[0]
            # the history backfill is one transaction: every day of it, or none
            assert (days, rows) in ((0, 0), (history, history * 1500))
    _rerun_succeeds(db)


def test_corrupt_or_foreign_database_file_gives_a_clear_error(tmp_path):
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"this is not a database\n" * 500)
    start = time.monotonic()
    with pytest.raises(DatabaseFileError, match="not a usable vae_pipeline DuckDB database"):
        connect(bad)
    assert time.monotonic() - start < 5  # no minutes of retries
    settings = tiny_settings(bad)
    result = (
        build_definitions(settings)
        .resolve_implicit_global_asset_job_def()
        .execute_in_process(
            partition_key=DAY,
            instance=DagsterInstance.ephemeral(),
            raise_on_error=False,
            asset_selection=[AssetKey("raw_returns")],
        )
    )
    assert not result.success
    failure = result.get_step_failure_events()[0]
    assert "not a usable vae_pipeline DuckDB database" in str(failure.step_failure_data.error)
    assert bad.read_bytes() == b"this is not a database\n" * 500  # untouched


def _per_day_counts(con) -> dict[tuple[str, str], int]:
    tables = [
        t[0]
        for t in con.execute(
            "select table_name from information_schema.columns where column_name = 'date'"
        ).fetchall()
    ]
    out = {}
    for t in tables:
        for day, n in con.execute(
            f'select cast(date as varchar), count(*) from main."{t}" group by 1'
        ).fetchall():
            out[(t, str(day)[:10])] = n
    return out


def _day_rows(db, table: str, day: str) -> pd.DataFrame:
    with connect(db, read_only=True) as con:
        frame = con.execute(f'select * from main."{table}" where date = ?', [day]).df()
    # wall-clock fields are the only ones allowed to differ between two runs
    timing = [c for c in frame.columns if "second" in c or c.endswith("_at")]
    frame = frame.drop(columns=timing)
    return frame.sort_values(list(frame.columns[:3])).reset_index(drop=True)


# slow (~40-75 s on 2 cores): run by .ci/run, outside the 10-minute `make test`
@pytest.mark.slow
def test_two_concurrent_runs_and_a_reader_never_fail_on_the_lock(tmp_path, materialised):
    """Two processes materialise different partitions into one file while a dashboard-style
    reader polls it: nobody fails on the lock, the reader never sees half a partition, and the
    rows of DAY equal those of a run that had the file to itself."""
    import threading

    db = tmp_path / "concurrent.duckdb"
    other = "2024-05-31"  # the trading day before DAY
    errors: list[BaseException] = []
    snapshots: list[dict] = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            if db.exists():
                try:
                    with connect(db, read_only=True) as con:
                        snapshots.append(_per_day_counts(con))
                except BaseException as exc:  # noqa: BLE001 - any failure is the finding
                    errors.append(exc)
            time.sleep(0.05)

    poll = threading.Thread(target=reader, daemon=True)
    poll.start()
    children = [subprocess.Popen([sys.executable, "-m", "vae_pipeline_tests.fault_runner", day], cwd=REPO,
                                 env=_env(db), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for day in (DAY, other)]  # fmt: skip
    try:
        outputs = [c.communicate(timeout=300)[1] for c in children]
    finally:
        stop.set()
        poll.join(30)
        for c in children:
            c.kill()
    for child, err in zip(children, outputs, strict=True):
        assert child.returncode == 0, err[-3000:]
        assert "Conflicting lock" not in err
    assert not errors, errors[:3]
    assert len(snapshots) >= 3  # the reader really read while the runs were going

    with connect(db, read_only=True) as con:
        final = _per_day_counts(con)
    for day in (DAY, other):
        assert final.get(("minvar_scorecard", day), 0) > 0, f"{day} not materialised"
    # Same universe and k: each partitioned table holds as many rows for one day as the other.
    for (table, day), n in final.items():
        if day == DAY and (table, other) in final:
            assert final[(table, other)] == n, table
    # Never half a partition: every snapshot shows a (table, day) either absent or complete.
    for snap in snapshots:
        for key, n in snap.items():
            if key[1] in (DAY, other):
                assert n == final[key], f"reader saw {n} of {final[key]} rows of {key}"

    reference = materialised[0].storage.db_path  # DAY materialised alone, in-process, same settings
    compared = [table for table, day in sorted(final) if day == DAY]
    assert {"trained_vae", "covariance_estimates", "minvar_scorecard", "anomaly_report"} <= set(
        compared
    )
    for table in compared:
        pd.testing.assert_frame_equal(
            _day_rows(db, table, DAY), _day_rows(reference, table, DAY), check_exact=True, obj=table
        )
