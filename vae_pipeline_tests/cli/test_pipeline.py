"""The CLI through the store: ``vae run`` on Parquet storage, ``vae scorecard`` before any run."""

from __future__ import annotations

from typer.testing import CliRunner

from vae_pipeline.cli import app
from vae_pipeline_tests.conftest import DAY

runner = CliRunner()
TINY_ENV = {
    "VAE_PIPELINE_START": "2024-01-02",
    "VAE_PIPELINE_N_NAMES": "20",
    "VAE_PIPELINE_WINDOW": "60",
    "VAE_PIPELINE_HORIZON": "5",
    "VAE_PIPELINE_EPOCHS": "30",
    "VAE_PIPELINE_MIN_NAMES": "5",
    "VAE_PIPELINE_SEED": "42",
}


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
    report = tmp_path / "db" / "reports" / f"report_{DAY}.html"
    assert report.exists() and report.stat().st_size > 10_000
    assert "Min-variance scorecard" in result.output and str(tmp_path / "lake") in result.output
    assert (tmp_path / "lake" / "trained_vae" / f"{DAY}.parquet").exists()
    assert any((tmp_path / "lake" / "trained_vae" / "weights").glob(f"{DAY}-*.pt"))
    assert not (tmp_path / "db" / "vae.duckdb").exists()  # nothing went to the DuckDB file
    # and the stored partition reads back through the CLI
    card = runner.invoke(app, ["scorecard"])
    assert card.exit_code == 0 and f"Min-variance scorecard {DAY}" in card.output.replace("\n", "")
