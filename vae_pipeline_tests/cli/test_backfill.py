"""``vae backfill``: fills a range, skips the days already stored, ``--force`` redoes them."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from vae_pipeline.cli import app
from vae_pipeline.store.base import Span
from vae_pipeline.store.duckdb_store import DuckDBStore
from vae_pipeline_tests.conftest import tiny_env

runner = CliRunner()
TINY_ENV = tiny_env(horizon=2, epochs=12)
DAYS = ("2024-05-30", "2024-05-31")


def _env(monkeypatch, db):
    for key, value in TINY_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("VAE_PIPELINE_DB", str(db))
    monkeypatch.delenv("VAE_PIPELINE_IO", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)


def _backfill(*extra, days=DAYS):
    return runner.invoke(app, ["backfill", "--start", days[0], "--end", days[-1],
                               *extra])  # fmt: skip


def test_backfill_skips_stored_days_and_force_redoes_them(tmp_path, monkeypatch):
    db = tmp_path / "vae.duckdb"
    _env(monkeypatch, db)
    first = _backfill()
    assert first.exit_code == 0, first.output
    assert (
        "2 trading days: 2 filled, 0 already stored (skipped), 0 not filled; 3 runs" in first.output
    )
    store = DuckDBStore(db)
    cards = store.read("minvar_scorecard")
    assert sorted(f"{d:%Y-%m-%d}" for d in pd.to_datetime(cards["date"]).unique()) == list(DAYS)
    again = _backfill()
    assert again.exit_code == 0, again.output
    assert "0 filled, 2 already stored (skipped), 0 not filled; 0 runs" in again.output
    # one table losing a day: only that day, and only the stage that stores it, runs again
    store.replace("anomaly_report", pd.DataFrame(), Span.days(DAYS[1], DAYS[1]))
    partial = _backfill()
    assert partial.exit_code == 0, partial.output
    assert "1 filled, 1 already stored (skipped), 0 not filled; 1 runs" in partial.output
    assert len(store.read("anomaly_report", Span.days(DAYS[1], DAYS[1]))) > 0
    # --force recomputes a stored day: each stage runs for it alone (its decision date and
    # history before it are kept)
    forced = _backfill("--force", days=DAYS[1:])
    assert forced.exit_code == 0, forced.output
    assert "1 trading days: 1 filled, 0 already stored (skipped), 0 not filled; 3 runs" in (
        forced.output
    )
    # recomputed, not appended: the same rows (the runs are seeded)
    pd.testing.assert_frame_equal(store.read("minvar_scorecard"), cards)


def test_an_end_before_the_start_is_a_one_line_error(tmp_path, monkeypatch):
    _env(monkeypatch, tmp_path / "vae.duckdb")
    result = runner.invoke(app, ["backfill", "--start", DAYS[1], "--end", DAYS[0]])
    assert result.exit_code == 2
    assert f"--end {DAYS[0]} is before --start {DAYS[1]}" in result.output
    assert "Traceback" not in result.output
