"""Follow the Dagster runs a command launches: one line per step, a rich progress bar per run.

:class:`RunFollower` is a context manager around the code that launches runs (``vae run``,
``vae backfill``). While it is open, a background thread polls the instance's run storage
for runs created after it opened, and each run's event log from a cursor, and prints

    ✓ trained_vae  2024-06-03  12.3 s
    ✗ raw_returns  2024-06-03  0.4 s  failed: raw_returns check returns_finite failed: ...

above one progress bar per run (its steps done out of its plan's steps). Polling the event
log works the same for ``execute_in_process`` on an ephemeral instance (in-memory storage,
read under its lock) and for ``dagster.execute_job`` on a persistent instance whose steps
run in other processes (they write the same storage), so no logger has to be wired into
the job. Dagster's own console stream is left to its logger's level
(``runtime.log_level``; ``vae run --verbose`` = DEBUG).

A command that launches many runs (``vae backfill``: one per day or per range) adds an
overall bar and counts what finished::

    with RunFollower(instance, err, total_runs=len(days), runs_label="days",
                     on_run_done=lambda run: ...) as follower:
        for day in days:
            execute_run(defs, keys, partition_key=day, instance=instance, log_level=level)
    follower.failures()   # one line per failed step: "asset partition: why"
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def run_partition(tags: dict) -> str:
    """The partition a run targets, from its tags: a key, 'first..last' or '' (none)."""
    if PARTITION_TAG in tags:
        return tags[PARTITION_TAG]
    if RANGE_START_TAG in tags:
        return f"{tags[RANGE_START_TAG]}..{tags.get(RANGE_END_TAG, '')}"
    return ""


def check_problems(evaluation) -> str:
    """A failed asset check's 'problems' metadata as one line ('' when it has none)."""
    problems = evaluation.metadata.get("problems")
    text = str(problems.value) if problems is not None else ""
    return "; ".join(line.removeprefix("- ") for line in text.splitlines() if line.strip())


@dataclass
class StepOutcome:
    """What one step did: its asset (step key), partition, seconds and why it failed."""

    step: str
    partition: str
    ok: bool
    seconds: float | None = None
    why: str = ""

    def line(self) -> str:
        mark = "[green]✓[/]" if self.ok else "[bold red]✗[/]"
        secs = f"{self.seconds:6.1f} s" if self.seconds is not None else "       "
        text = f"{mark} {escape(self.step):<26} {self.partition:<22} {secs}"
        return text + (f"  [red]failed: {escape(self.why)}[/]" if not self.ok else "")


@dataclass
class RunOutcome:
    """One followed run: its id, partition, steps, failed gates and final status."""

    run_id: str
    partition: str
    total_steps: int
    steps: list[StepOutcome] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    status: str = "STARTED"  # then SUCCESS or FAILURE
    cursor: str | None = None
    task: TaskID | None = None
    step_failure: dict[str, str] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.status in ("SUCCESS", "FAILURE", "CANCELED")


class RunFollower:
    """Print each step of every run created while open; a progress bar per run.

    ``describe(run_outcome)`` names a run's bar (default: 'run N  <partition>');
    ``total_runs`` adds an overall bar (e.g. the days of a backfill); ``on_run_done`` is
    called once per finished run (a backfill can count days with it). ``outcomes`` holds
    every followed run, in creation order, after the block.
    """

    def __init__(
        self,
        instance,
        console: Console | None = None,
        *,
        total_runs: int | None = None,
        runs_label: str = "runs",
        describe: Callable[[RunOutcome, int], str] | None = None,
        on_run_done: Callable[[RunOutcome], None] | None = None,
        poll_seconds: float = 0.25,
    ):
        self.instance = instance
        self.console = console or Console(stderr=True)
        self.total_runs = total_runs
        self.runs_label = runs_label
        self.describe = describe or (lambda run, n: f"run {n}  {run.partition}".rstrip())
        self.on_run_done = on_run_done
        self.poll_seconds = poll_seconds
        self.outcomes: dict[str, RunOutcome] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._overall: TaskID | None = None
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,  # the bars go when done; the step lines stay
            disable=not self.console.is_terminal,  # a pipe or a log file gets the lines only
        )

    # -- context manager -------------------------------------------------------------------
    def __enter__(self) -> RunFollower:
        # Run storage stamps create_timestamp in UTC; a second's slack for clock rounding.
        self.started = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
        self.progress.start()
        if self.total_runs is not None:
            self._overall = self.progress.add_task(self.runs_label, total=self.total_runs)
        self._thread = threading.Thread(target=self._loop, name="run-follower", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.poll()  # whatever was written after the last poll
        self.progress.stop()

    # -- results ---------------------------------------------------------------------------
    @property
    def runs(self) -> list[RunOutcome]:
        return list(self.outcomes.values())

    def failures(self) -> list[str]:
        """One line per failed step (its gates' problems, or its error), over all runs."""
        return [
            f"{step.step} {step.partition}: {step.why}"
            for run in self.runs
            for step in run.steps
            if not step.ok
        ]

    # -- polling ---------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll()
            except Exception as exc:  # never let a display thread kill the command
                self.console.print(f"[yellow]progress display stopped: {exc}[/]")
                return

    def poll(self) -> None:
        """Read new runs and new events once (thread-safe)."""
        from dagster import RunsFilter

        with self._lock:
            records = self.instance.get_run_records(filters=RunsFilter(created_after=self.started))
            for record in sorted(records, key=lambda r: r.create_timestamp):
                run = record.dagster_run
                outcome = self.outcomes.get(run.run_id)
                if outcome is None:
                    outcome = self._add(run)
                if not outcome.done:
                    self._read_events(outcome)

    def _add(self, run) -> RunOutcome:
        outcome = RunOutcome(run.run_id, run_partition(run.tags), self._plan_size(run))
        self.outcomes[run.run_id] = outcome
        outcome.task = self.progress.add_task(
            self.describe(outcome, len(self.outcomes)), total=outcome.total_steps or None
        )
        return outcome

    def _plan_size(self, run) -> int:
        if run.step_keys_to_execute:
            return len(run.step_keys_to_execute)
        snapshot_id = run.execution_plan_snapshot_id
        if snapshot_id is None:
            return 0
        plan = self.instance.get_execution_plan_snapshot(snapshot_id)
        return len(plan.step_keys_to_execute or plan.steps)

    def _read_events(self, run: RunOutcome) -> None:
        from dagster import DagsterEventType as T

        while True:
            page = self.instance.get_records_for_run(run.run_id, cursor=run.cursor, limit=500)
            run.cursor = page.cursor
            for record in page.records:
                entry = record.event_log_entry
                event = entry.dagster_event
                if event is None:  # a user log line (context.log): its warnings only (an
                    # error is the step's failure, printed in the step's line)
                    if 30 <= entry.level < 40 and entry.user_message:
                        where = f"{entry.step_key}: " if entry.step_key else ""
                        run.warnings.append(where + entry.user_message)
                        self.console.print(
                            f"[yellow]! {escape(where + entry.user_message)}[/]", soft_wrap=True
                        )
                    continue
                kind = event.event_type
                if kind == T.ASSET_CHECK_EVALUATION:
                    data = event.event_specific_data
                    if not data.passed:
                        line = (
                            f"{data.asset_key.to_user_string()} check {data.check_name} "
                            f"failed: {check_problems(data)}"
                        )
                        run.failed_checks.append(line)
                        step = event.step_key or ""
                        run.step_failure[step] = "; ".join(
                            filter(None, [run.step_failure.get(step), line])
                        )
                elif kind == T.STEP_SUCCESS:
                    self._step_done(run, StepOutcome(
                        event.step_key, run.partition, True,
                        event.event_specific_data.duration_ms / 1000.0,
                    ))  # fmt: skip
                elif kind == T.STEP_FAILURE:
                    error = event.event_specific_data.error
                    why = run.step_failure.get(event.step_key) or _first_line(error)
                    self._step_done(
                        run, StepOutcome(event.step_key, run.partition, False, None, why)
                    )
                elif kind == T.STEP_SKIPPED:
                    self.progress.advance(run.task)
                elif kind in (T.RUN_SUCCESS, T.RUN_FAILURE, T.RUN_CANCELED):
                    run.status = _status()[kind]
                    self.progress.update(run.task, visible=False)
                    if self._overall is not None:
                        self.progress.advance(self._overall)
                    if self.on_run_done is not None:
                        self.on_run_done(run)
            if not page.has_more:
                return

    def _step_done(self, run: RunOutcome, step: StepOutcome) -> None:
        run.steps.append(step)
        self.console.print(step.line(), highlight=False, soft_wrap=True)
        self.progress.advance(run.task)


def _status() -> dict:
    from dagster import DagsterEventType as T

    return {T.RUN_SUCCESS: "SUCCESS", T.RUN_FAILURE: "FAILURE", T.RUN_CANCELED: "CANCELED"}


def _first_line(error) -> str:
    """The user-facing part of a step's error: the innermost cause's first line."""
    if error is None:
        return "unknown error"
    while error.cause is not None:
        error = error.cause
    text = (error.message or "").strip().splitlines()
    return text[0] if text else error.cls_name or "error"
