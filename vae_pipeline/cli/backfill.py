"""``vae backfill --start A --end B``: every daily asset for every trading day of [A, B].

The orchestration is :func:`vae_pipeline.pipeline.runner.backfill` (a few ranged single runs,
the days already stored skipped unless ``--force``); this module parses the options, shows the
progress and prints what was filled, skipped and refused.
"""

from __future__ import annotations

import os

import pandas as pd
import typer

from vae_pipeline.cli.app import _fail, app, err, out

STAGES = {
    "history": "raw history",
    "decisions": "decisions (models, covariances)",
    "days": "scorecards, factors, anomalies",
}


def _stage_labels():
    """The ``runner.backfill`` progress callback and the run follower's bar label: each run
    is named by the stage the backfill announced just before launching it."""
    current = {"stage": ""}

    def progress(stage: str, first: str, last: str, days: int, result) -> None:
        if result is None:  # a run starts
            current["stage"] = f"{STAGES.get(stage, stage)}, {days} days"

    def describe(run, n: int) -> str:
        return f"{current['stage']}  {run.partition}"

    return progress, describe


@app.command("backfill")
def backfill(
    start: str = typer.Option(..., help="first trading day to fill (YYYY-MM-DD)"),
    end: str = typer.Option(..., help="last trading day to fill (YYYY-MM-DD)"),
    force: bool = typer.Option(False, "--force", help="recompute the days already stored"),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="print Dagster's full event stream (DEBUG) as well"
    ),
) -> None:
    """Fill every daily asset (all but the report) for each trading day in [START, END], the
    history its windows need included, in a few ranged runs. Days already stored are skipped
    (safe to stop and re-run); --force recomputes them. One line per step while it runs.
    The Adam-trained VAEs / CVAEs train as warm-start chains (as many as make the range
    cheapest) of at most VAE_PIPELINE_CHAIN_LENGTH days (0: every day cold, as a
    one-day run)."""
    from vae_pipeline.settings import PipelineSettings

    try:
        settings = PipelineSettings.from_env()
        first, last = pd.Timestamp(start), pd.Timestamp(end)
    except ValueError as exc:
        _fail(str(exc))
    if last < first:
        _fail(f"--end {end} is before --start {start}")
    if last < pd.Timestamp(settings.data.start):
        _fail(f"{end} is before the first partition {settings.data.start} (VAE_PIPELINE_START)")
    from dagster import DagsterError, DagsterInstance

    from vae_pipeline.cli.progress import RunFollower
    from vae_pipeline.pipeline.definitions import build_definitions
    from vae_pipeline.pipeline.runner import backfill as run_backfill

    instance = (
        DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    )
    err.print(f"backfilling {first:%Y-%m-%d} .. {last:%Y-%m-%d} into {settings.storage.db_path} "
              f"(source: {settings.data.source}{', forced' if force else ''})",
              highlight=False)  # fmt: skip
    try:
        progress, describe = _stage_labels()
        log_level = "DEBUG" if verbose else settings.runtime.log_level
        with RunFollower(instance, err, describe=describe):
            result = run_backfill(build_definitions(settings), first, last, settings,
                                  force=force, instance=instance, progress=progress,
                                  log_level=log_level)  # fmt: skip
    except (DagsterError, ValueError, RuntimeError, OSError) as exc:
        _fail(f"backfill stopped: {exc}".splitlines()[0])
    plan = result.plan
    out.print(
        f"{len(plan.days)} trading days: {len(result.filled)} filled, "
        f"{len(plan.complete)} already stored (skipped), {len(result.incomplete)} not filled; "
        f"{len(plan.runs)} runs",
        highlight=False,
    )
    for line in result.refused:
        err.print(f"refused: {line}", style="red", markup=False, highlight=False, soft_wrap=True)
    if result.incomplete:
        days = ", ".join(f"{d:%Y-%m-%d}" for d in result.incomplete[:10])
        more = f" and {len(result.incomplete) - 10} more" if len(result.incomplete) > 10 else ""
        err.print(f"not filled: {days}{more}", style="red", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
