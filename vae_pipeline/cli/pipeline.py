"""Pipeline commands of the ``vae`` CLI: ``vae run`` (what ``make run`` calls) and ``vae scorecard``."""

from __future__ import annotations

import importlib.util
import os
import warnings

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from vae_pipeline.cli.app import app
from vae_pipeline.core.calendar import is_trading_day, latest_trading_day
from vae_pipeline.settings import PipelineSettings
from vae_pipeline.store.base import Span, Store, StoreError
from vae_pipeline.store.connection import DatabaseFileError
from vae_pipeline.store.factory import store_for

console = Console()
err_console = Console(stderr=True)


def _settings() -> PipelineSettings:
    try:
        return PipelineSettings.from_env()
    except ValueError as exc:
        _error(str(exc))
        raise typer.Exit(2) from None


def _error(message: str) -> None:
    """One error line on stderr, printed as is (no markup, no wrapping inside a word)."""
    err_console.print(
        f"Error: {message}", style="red", markup=False, highlight=False, soft_wrap=True
    )


def failed_checks(instance, run_id: str) -> list[str]:
    """'asset check NAME failed: problems' for each failed asset check of a run."""
    from dagster import DagsterEventType

    found = []
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION):
        evaluation = record.dagster_event.event_specific_data
        if evaluation.passed:
            continue
        problems = evaluation.metadata.get("problems")
        text = str(problems.value) if problems is not None else ""
        text = "; ".join(line.removeprefix("- ") for line in text.splitlines() if line.strip())
        found.append(
            f"{evaluation.asset_key.to_user_string()} check {evaluation.check_name} failed: {text}"
        )
    return found


def _reader(settings: PipelineSettings) -> Store:
    """The configured store, read-only; exits with one clear line when nothing is stored yet
    (or the file is not a vae_pipeline database)."""
    store = store_for(settings, read_only=True)
    try:
        store.must_exist()
    except StoreError as exc:
        _error(str(exc))
        raise typer.Exit(1) from None
    return store


def print_scorecard(store: Store, day: pd.Timestamp) -> None:
    """Print partition ``day``'s min-var scorecard and the walk-forward horse race."""
    day = pd.Timestamp(day).normalize()
    card = store.read("minvar_scorecard", Span.days(day, day))
    if len(card):
        card = card.sort_values("realised_vol", ignore_index=True)
    race = store.read("horse_race")
    if card.empty:
        console.print(f"[yellow]no scorecard stored for {day:%Y-%m-%d}[/yellow]")
        return
    table = Table(
        title=f"Min-variance scorecard {day:%Y-%m-%d} "
        f"(decision {pd.Timestamp(card['decision_date'].iloc[0]):%Y-%m-%d}, realised over the next H days)"
    )
    for col in ("estimator", "realised vol", "predicted vol"):
        table.add_column(col, justify="left" if col == "estimator" else "right")
    for row in card.itertuples():
        table.add_row(row.estimator, f"{row.realised_vol:.2%}", f"{row.predicted_vol:.2%}")
    console.print(table)
    console.print(
        f"horse race over {int(race['n_scored'].max()) if len(race) else 0} scored partition(s) "
        "is in table main.horse_race"
    )


@app.command("run")
def run(
    day: str = typer.Option(
        None,
        help="trading day to materialise (default: the last complete one the source has data for)",
    ),
) -> None:
    """Materialise the whole asset graph for one trading day (default: the latest) and print its scorecard."""
    warnings.filterwarnings("ignore")
    # Settings first: importing vae_pipeline.pipeline.definitions builds ``defs`` from the environment,
    # and a bad variable must give its one-line message, not a traceback.
    settings = _settings()
    from dagster import DagsterError, DagsterInstance, RunsFilter

    from vae_pipeline.pipeline.definitions import build_definitions
    from vae_pipeline.pipeline.runner import materialise_day, report_path
    from vae_pipeline.sources import default_day

    try:
        target = pd.Timestamp(day) if day else default_day(settings, latest_trading_day())
    except (ValueError, RuntimeError) as exc:  # an unreadable file, a failed download
        _error(f"{exc}")
        raise typer.Exit(2) from None
    if not is_trading_day(target):
        _error(f"{target:%Y-%m-%d} is not a trading day")
        raise typer.Exit(2)
    if target < pd.Timestamp(settings.data.start):
        first = f"the first partition {settings.data.start} (VAE_PIPELINE_START)"
        _error(f"{target:%Y-%m-%d} is before {first}")
        raise typer.Exit(2)
    instance = (
        DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    )
    console.print(
        f"materialising {target:%Y-%m-%d} into {settings.storage.db_path} (source: {settings.data.source})"
    )
    started = pd.Timestamp.now(tz="UTC").to_pydatetime()
    try:
        results = materialise_day(build_definitions(settings), target, settings, instance=instance)
    except (DagsterError, ValueError, RuntimeError, OSError) as exc:
        # A refused input: a failed gate (its problems are in the run's events) or the
        # source's own error (it names the file, the ticker and the date).
        runs = instance.get_runs(filters=RunsFilter(created_after=started))
        found = [line for run in runs for line in failed_checks(instance, run.run_id)]
        _error(f"{target:%Y-%m-%d} not materialised: " + ("; ".join(found) or str(exc)))
        raise typer.Exit(1) from None
    if not all(r.success for r in results):
        found = [line for r in results for line in failed_checks(instance, r.run_id)]
        _error("a run failed: " + ("; ".join(found) or "see the log above"))
        raise typer.Exit(1)
    store = store_for(settings, read_only=True)
    print_scorecard(store, target)
    console.print(f"stored in: {store.describe()}", soft_wrap=True, highlight=False)
    page = report_path(results)
    if page is not None:
        console.print(f"report: {page}", soft_wrap=True, highlight=False)


@app.command("scorecard")
def scorecard(
    day: str = typer.Option(None, help="partition to show (default: the latest scored)"),
) -> None:
    """Print a stored partition's min-var scorecard."""
    settings = _settings()
    store = _reader(settings)
    try:
        if day is None:
            cards = store.read("minvar_scorecard")
            if cards.empty:
                _error(f"nothing scored yet in {store.describe()}: run `make run` first")
                raise typer.Exit(1)
            day = str(cards["date"].max())
        print_scorecard(store, pd.Timestamp(day))
    except DatabaseFileError as exc:  # a foreign or corrupt file, or a lock never released
        _error(str(exc).split(". DuckDB said:")[0])
        raise typer.Exit(1) from None


@app.command("dashboard")
def dashboard(
    port: int = typer.Option(8501, help="port to serve on (bound to 127.0.0.1 only)"),
) -> None:
    """Serve the Streamlit dashboard (vae_pipeline/dashboard.py) on http://127.0.0.1:PORT, headless.

    It reads the DuckDB file (VAE_PIPELINE_DB) with short read-only connections, so the
    pipeline can keep writing while it is open.
    """
    import sys
    from pathlib import Path

    if importlib.util.find_spec("streamlit") is None:
        console.print("[red]streamlit is not installed: pip install -e '.[dev]'[/red]")
        raise typer.Exit(2)
    settings = _settings()
    app_file = Path(__file__).parent.parent / "dashboard.py"
    console.print(
        f"dashboard on http://127.0.0.1:{port} reading {settings.storage.db_path.resolve()}",
        highlight=False,
    )
    argv = [
        sys.executable, "-m", "streamlit", "run", str(app_file),
        "--server.address", "127.0.0.1",
        "--server.port", str(port),
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
    ]  # fmt: skip
    os.environ["VAE_PIPELINE_DB"] = str(settings.storage.db_path.resolve())  # cwd-independent
    sys.stdout.flush()
    os.execv(sys.executable, argv)  # become the server: signals reach streamlit directly
