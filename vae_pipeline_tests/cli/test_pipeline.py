"""The CLI through the store: ``vae run`` on Parquet storage, ``vae scorecard`` before any run."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from vae_pipeline.cli import app
from vae_pipeline_tests.conftest import DAY, DECISION, tiny_env

runner = CliRunner()
TINY_ENV = tiny_env()


def test_scorecard_before_any_run_says_so_in_one_line(tmp_path, monkeypatch):
    db = tmp_path / "nothing" / "vae.duckdb"
    monkeypatch.setenv("VAE_PIPELINE_DB", str(db))
    monkeypatch.delenv("VAE_PIPELINE_IO", raising=False)
    result = runner.invoke(app, ["scorecard"])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)  # typer.Exit, not an uncaught error
    out = result.output
    assert "Traceback" not in out and "duckdb" not in out.lower().replace(str(db).lower(), "")
    assert f"no data yet at {db}" in out.replace("\n", "") and "make run" in out
    assert len([line for line in out.splitlines() if line.strip()]) <= 2


def test_scorecard_on_a_foreign_file_is_a_clear_error(tmp_path, monkeypatch):
    db = tmp_path / "foreign.duckdb"
    db.write_bytes(b"SQLite format 3\x00" + bytes(4096))
    monkeypatch.setenv("VAE_PIPELINE_DB", str(db))
    monkeypatch.delenv("VAE_PIPELINE_IO", raising=False)
    result = runner.invoke(app, ["scorecard"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "not a usable vae_pipeline DuckDB database" in result.output.replace("\n", "")


def test_run_on_parquet_storage_finishes_with_its_report(tmp_path, monkeypatch):
    for key, value in TINY_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("VAE_PIPELINE_DB", str(tmp_path / "db" / "vae.duckdb"))
    monkeypatch.setenv("VAE_PIPELINE_IO", "parquet")
    monkeypatch.setenv("VAE_PIPELINE_PARQUET_ROOT", str(tmp_path / "lake"))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    result = runner.invoke(app, ["run", "--day", DAY])
    assert result.exit_code == 0, result.output
    report = tmp_path / "lake" / "reports" / f"report_{DAY}.html"  # under the shared root
    assert report.exists() and report.stat().st_size > 10_000
    assert "Min-variance scorecard" in result.output and str(tmp_path / "lake") in result.output
    assert (tmp_path / "lake" / "trained_vae" / f"{DAY}.parquet").exists()
    assert any((tmp_path / "lake" / "trained_vae" / "weights").glob(f"{DAY}-*.pt"))
    assert not (tmp_path / "db" / "vae.duckdb").exists()  # nothing went to the DuckDB file
    # and the stored partition reads back through the CLI
    card = runner.invoke(app, ["scorecard"])
    assert card.exit_code == 0 and f"Min-variance scorecard {DAY}" in card.output.replace("\n", "")


def _tiny(monkeypatch, tmp_path, **extra):
    for key, value in {**TINY_ENV, **extra}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("VAE_PIPELINE_DB", str(tmp_path / "db" / "vae.duckdb"))
    monkeypatch.delenv("VAE_PIPELINE_IO", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


def test_run_prints_a_line_per_step_then_scorecard_report_and_ui(tmp_path, monkeypatch):
    _tiny(monkeypatch, tmp_path)
    result = runner.invoke(app, ["run", "--day", DAY])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) <= 100, len(lines)
    assert "DEBUG" not in result.output and "Warning" not in result.output
    steps = [line.split() for line in lines if line.startswith("✓")]
    assert {"raw_returns", "trained_vae", "covariance_estimates", "report"} <= {s[1] for s in steps}
    assert ["trained_vae", DECISION] in [s[1:3] for s in steps]  # the decision run's model
    assert all(s[-1] == "s" and float(s[-2]) >= 0 for s in steps)  # seconds per step
    assert not any(line.startswith("✗") for line in lines)
    # the last lines: the scorecard, where it is stored, the report and how to open the UI
    report = tmp_path / "db" / "reports" / f"report_{DAY}.html"
    assert lines[-2] == f"report: {report}" and report.exists()
    assert "make ui" in lines[-1] and "vae dashboard" in lines[-1] and "dashboard.html" in lines[-1]
    assert any(line.startswith(" Min-variance scorecard") for line in lines[-30:])


def test_run_verbose_brings_back_dagsters_stream(tmp_path, monkeypatch):
    _tiny(monkeypatch, tmp_path, VAE_PIPELINE_EPOCHS="3", VAE_PIPELINE_N_NAMES="12")
    result = runner.invoke(app, ["run", "--day", DAY, "--verbose"])
    assert result.exit_code == 0, result.output
    debug = [line for line in result.output.splitlines() if " - DEBUG - " in line]
    assert len(debug) > 100  # every event: STEP_START, LOADED_INPUT, HANDLED_OUTPUT, ...
    assert any("STEP_SUCCESS" in line for line in debug)
    assert result.output.rstrip().splitlines()[-2].startswith("report: ")


def test_log_level_setting_reaches_the_console_logger(tmp_path, monkeypatch):
    """VAE_PIPELINE_LOG_LEVEL=INFO: Dagster's INFO lines, none of its DEBUG ones."""
    _tiny(monkeypatch, tmp_path, VAE_PIPELINE_EPOCHS="3", VAE_PIPELINE_N_NAMES="12")
    monkeypatch.setenv("VAE_PIPELINE_LOG_LEVEL", "info")
    result = runner.invoke(app, ["run", "--day", DAY])
    assert result.exit_code == 0, result.output
    assert " - INFO - " in result.output and " - DEBUG - " not in result.output


@pytest.mark.parametrize(
    ("day", "says"),
    [
        ("2024-06-01", "2024-06-01 is a Saturday, not a trading day: try --day 2024-05-31"),
        ("2024-05-27", "2024-05-27 is an NYSE holiday (Memorial Day), not a trading day: "
                       "try --day 2024-05-24"),
        ("2023-12-29", "2023-12-29 is before the first partition 2024-01-02 (VAE_PIPELINE_START)"),
        ("2030-01-07", "2030-01-07 is after the last complete trading day"),
        ("06/03/2024x", "--day '06/03/2024x' is not a date: use YYYY-MM-DD"),
    ],
)  # fmt: skip
def test_run_refuses_a_day_it_cannot_materialise_in_one_line(tmp_path, monkeypatch, day, says):
    _tiny(monkeypatch, tmp_path)
    result = runner.invoke(app, ["run", "--day", day])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert says in result.output.replace("\n", "")
    assert len(result.output.strip().splitlines()) <= 2
    assert not (tmp_path / "db" / "vae.duckdb").exists()  # refused before any run


def test_dashboard_before_any_run_says_run_first(tmp_path, monkeypatch):
    db = tmp_path / "nothing" / "vae.duckdb"
    monkeypatch.setenv("VAE_PIPELINE_DB", str(db))
    monkeypatch.delenv("VAE_PIPELINE_IO", raising=False)
    result = runner.invoke(app, ["dashboard", "--port", "8599"])  # exits before serving
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    text = result.output.replace("\n", "")
    assert f"no data yet at {db}: run `make run` (or `vae run`) first" in text
    assert len(result.output.strip().splitlines()) <= 2


HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("create table t as select 1 as x")
print("holding", flush=True)
time.sleep(60)
"""


def test_ui_says_which_process_holds_the_duckdb_file(tmp_path, monkeypatch):
    import subprocess
    import sys

    db = tmp_path / "vae.duckdb"
    monkeypatch.setenv("VAE_PIPELINE_DB", str(db))
    monkeypatch.delenv("VAE_PIPELINE_IO", raising=False)
    free = runner.invoke(app, ["ui", "--check"])  # no file yet: nothing holds it
    assert free.exit_code == 0 and "no other process holds it" in free.output
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE)
    try:
        assert holder.stdout.readline().strip() == b"holding"
        held = runner.invoke(app, ["ui", "--check"])
        ran = runner.invoke(app, ["run", "--day", DAY])  # refused at once, not after 2 minutes
    finally:
        holder.kill()
        holder.wait()
    assert held.exit_code == 1 and isinstance(held.exception, SystemExit), held.output
    text = held.output.replace("\n", " ")
    assert f"{db} is held by" in text and f"(PID {holder.pid})" in text
    assert "runs launched from the UI will wait for it, then fail" in text
    assert len(held.output.strip().splitlines()) <= 3
    ran_text = ran.output.replace("\n", "")
    assert ran.exit_code == 1 and f"{db} is held by" in ran_text, ran.output
    assert f"(PID {holder.pid}): close it, then run again" in ran_text
    released = runner.invoke(app, ["ui", "--check"])  # the holder gone: free again
    assert released.exit_code == 0, released.output


def test_run_names_the_failed_gate_in_the_steps_line_and_the_error(tmp_path, monkeypatch):
    _tiny(monkeypatch, tmp_path, VAE_PIPELINE_MIN_NAMES="30")  # 20 names < 30: a gate fails
    result = runner.invoke(app, ["run", "--day", DAY])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    lines = result.output.splitlines()
    (failed,) = [line for line in lines if line.startswith("✗")]
    assert failed.split()[1] == "raw_returns"
    assert "check enough_names failed" in failed and "fewer than 30 names" in failed
    assert lines[-1].startswith(f"Error: {DAY} not materialised: raw_returns ")
    assert "Traceback" not in result.output and " - DEBUG - " not in result.output
    assert len(lines) <= 6


def test_run_refuses_a_day_after_the_prices_file_ends(tmp_path, monkeypatch):
    import numpy as np
    import pandas as pd

    from vae_pipeline.core.calendar import trading_days

    days = trading_days("2024-01-02", "2024-03-28")
    rng = np.random.default_rng(42)
    wide = pd.DataFrame(100 * np.cumprod(1 + rng.normal(0, 0.01, (len(days), 6)), axis=0),
                        columns=[f"T{j}" for j in range(6)])  # fmt: skip
    wide.insert(0, "date", days.strftime("%d/%m/%Y"))  # day-first, proven by days above 12
    wide.to_csv(tmp_path / "prices.csv", index=False)
    monkeypatch.setenv("VAE_PIPELINE_SOURCE", "csv")
    monkeypatch.setenv("VAE_PIPELINE_PRICES", str(tmp_path / "prices.csv"))
    monkeypatch.setenv("VAE_PIPELINE_START", "2024-01-02")
    monkeypatch.setenv("VAE_PIPELINE_DB", str(tmp_path / "vae.duckdb"))
    result = runner.invoke(app, ["run", "--day", "2024-04-01"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert (
        "2024-04-01 is after the last day of the data (the prices file ends there), "
        "2024-03-28: try --day 2024-03-28" in result.output.replace("\n", "")
    )
