"""Pipeline commands of the ``vae`` CLI: ``vae run`` (what ``make run`` calls) and ``vae scorecard``."""

from __future__ import annotations

import importlib.util
import os

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from vae_pipeline.cli.app import app
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


UI_HINT = (
    "open it: make ui (Dagster UI, http://127.0.0.1:3000) | "
    "vae dashboard (Streamlit, http://127.0.0.1:8501) | dashboard.html (offline pPCA demo)"
)
RUN_LABELS = ("history", "decision", "day")  # materialise_day's three runs


def _last_day(settings: PipelineSettings, day: str | None) -> pd.Timestamp | None:
    """The source's last day with data (None: unbounded). A download source is asked only
    when no ``--day`` is given (asking means downloading)."""
    from vae_pipeline.sources import make_source
    from vae_pipeline.sources.base import last_date

    if day is not None and settings.data.source == "yfinance":
        return None
    return last_date(make_source(settings))


@app.command("run")
def run(
    day: str = typer.Option(
        None,
        help="trading day to materialise (default: the last complete one the source has data for)",
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="print Dagster's full event stream (DEBUG) as well"
    ),
) -> None:
    """Materialise the whole asset graph for one trading day (default: the latest) and print its scorecard.

    One line per step while it runs; then the scorecard, the report's path and how to open
    the UI."""
    # Settings first: importing vae_pipeline.pipeline.definitions builds ``defs`` from the environment,
    # and a bad variable must give its one-line message, not a traceback.
    settings = _settings()
    from dagster import DagsterError, DagsterInstance

    from vae_pipeline.cli.days import check_day
    from vae_pipeline.cli.progress import RunFollower
    from vae_pipeline.cli.ui import lock_holder
    from vae_pipeline.pipeline.definitions import build_definitions
    from vae_pipeline.pipeline.runner import materialise_day, report_path

    try:
        target = check_day(day, settings.data.start, _last_day(settings, day))
    except (ValueError, RuntimeError) as exc:  # a bad --day, an unreadable file, a failed download
        _error(f"{exc}")
        raise typer.Exit(2) from None
    holder = lock_holder(settings.storage.db_path) if settings.storage.io == "duckdb" else None
    if holder is not None:  # else every step would wait two minutes for the lock, then fail
        _error(f"{settings.storage.db_path} is held by {holder}: close it, then run again")
        raise typer.Exit(1)
    instance = (
        DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    )
    err_console.print(
        f"materialising {target:%Y-%m-%d} into {store_for(settings).describe()} "
        f"(source: {settings.data.source}; three runs: history, decision date, the day)",
        highlight=False,
        soft_wrap=True,
    )
    log_level = "DEBUG" if verbose else settings.runtime.log_level
    label = lambda run, n: f"{RUN_LABELS[min(n, 3) - 1]} {run.partition}"  # noqa: E731
    started = pd.Timestamp.now()
    failure: Exception | None = None
    with RunFollower(instance, err_console, describe=label) as follower:
        try:
            results = materialise_day(
                build_definitions(settings),
                target,
                settings,
                instance=instance,
                log_level=log_level,
            )
        except (DagsterError, ValueError, RuntimeError, OSError) as exc:
            failure = exc  # reported below, once the follower has printed the failed step
    seconds = (pd.Timestamp.now() - started).total_seconds()
    hint = "" if verbose else " (vae run --verbose shows Dagster's log)"
    if failure is not None:
        # A refused input: a failed gate (its problems are in the run's events) or the
        # source's own error (it names the file, the ticker and the date).
        found = follower.failures()
        _error(f"{target:%Y-%m-%d} not materialised: " + ("; ".join(found) or str(failure)) + hint)
        raise typer.Exit(1)
    if not all(r.success for r in results):
        _error("a run failed: " + ("; ".join(follower.failures()) or "see above") + hint)
        raise typer.Exit(1)
    n_steps = sum(len(r.steps) for r in follower.runs)
    err_console.print(f"{len(results)} runs, {n_steps} steps in {seconds:.0f} s", highlight=False)
    store = store_for(settings, read_only=True)
    print_scorecard(store, target)
    console.print(f"stored in: {store.describe()}", soft_wrap=True, highlight=False)
    page = report_path(results)
    if page is not None:
        console.print(f"report: {page}", soft_wrap=True, highlight=False)
    console.print(UI_HINT, soft_wrap=True, highlight=False)


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
        _error("streamlit is not installed: pip install -e . (it is a dependency)")
        raise typer.Exit(2)
    settings = _settings()
    if not store_for(settings, read_only=True).exists():
        _error(
            f"no data yet at {store_for(settings).describe()}: run `make run` (or `vae run`) "
            "first, then `vae dashboard`"
        )
        raise typer.Exit(1)
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
