"""Materialise one trading day end to end, the way ``make run`` does, or every day of a
range, the way ``vae backfill`` does (Dagster layer).

Three runs, each visible in the Dagster UI when an instance is given:
1. the ``raw_returns`` / ``market_observables`` history the windows need, as one
   single-run backfill;
2. the decision chain (models and covariances) of d-H, which partition d scores;
3. the whole graph for d, the ``report`` asset (an HTML page under the DuckDB file's
   folder) included; :func:`report_path` finds the page in the run's results.

:func:`backfill` fills [A, B] in as few runs as correctness allows: one ranged run per stage
and contiguous stretch of missing days (history over [history_start(A), B], the decision chain
over [A-H, B], the rest over [A, B]), each a single run whose assets compute every day of it.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    DagsterInstance,
    Definitions,
    JobDefinition,
    execute_job,
    reconstructable,
)

from vae_pipeline.core.calendar import shift_trading_days, trading_days
from vae_pipeline.pipeline.assets.models import MODEL_KEYS, model_asset_name
from vae_pipeline.pipeline.assets.report import ON_DEMAND
from vae_pipeline.pipeline.assets.truth import NAME as TRUTH
from vae_pipeline.pipeline.executors import check_dask_scheduler, in_process
from vae_pipeline.pipeline.schedules import DAILY_REFIT_JOB
from vae_pipeline.settings import PipelineSettings
from vae_pipeline.store.base import Span, Store
from vae_pipeline.store.factory import store_for

HISTORY_ASSETS = ["raw_returns", "market_observables"]
DECISION_ASSETS = [
    "standardised_panel",
    *(model_asset_name(key) for key in MODEL_KEYS),
    "covariance_estimates",
]
# Not part of a backfill: the report is for the latest day (or on demand), like the beta sweep.
NOT_BACKFILLED = {"report", *ON_DEMAND}
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
PARTITION_TAG = "dagster/partition"


def history_start(day: pd.Timestamp, settings: PipelineSettings) -> pd.Timestamp:
    """First day of raw history partition d needs: the window of d-H, plus the holding period."""
    first = shift_trading_days(day, -(settings.evaluation.window + settings.evaluation.horizon))
    return max(first, pd.Timestamp(settings.data.start))


def with_log_level(run_config: dict | None, log_level: str | None) -> dict | None:
    """``run_config`` with the console logger at ``log_level`` (unchanged when None)."""
    if log_level is None:
        return run_config
    console = {"console": {"config": {"log_level": log_level.upper()}}}
    return {**(run_config or {}), "loggers": {**(run_config or {}).get("loggers", {}), **console}}


def execute_run(
    defs: Definitions,
    asset_selection: list[AssetKey],
    *,
    partition_key: str | None = None,
    partition_range: tuple[str, str] | None = None,
    instance: DagsterInstance | None = None,
    run_config: dict | None = None,
    log_level: str | None = None,
):
    """Launch one run of ``asset_selection`` for one partition or a partition range (a
    single run over the range: the ranged assets see ``context.partition_key_range``).

    The one place this package launches runs (``vae run``, ``vae backfill``): the executor
    the settings name is honoured here. The in-process executor (the default) runs ``defs``'
    job in this process; any other one (``multiprocess``, ``dask``, ...) runs the job through
    ``dagster.execute_job``, its steps in other processes, which rebuild the definitions from
    the environment (:func:`environment_job`): ``defs`` must be the environment's. A run
    needs a persistent instance there: ``instance`` when it is one, else a temporary one
    under the data folder (removed when this process exits). ``log_level`` sets Dagster's
    console logger (the ``vae`` commands keep it quiet and print their own progress)."""
    run_config = with_log_level(run_config, log_level)
    if (partition_key is None) == (partition_range is None):
        raise ValueError("give exactly one of partition_key and partition_range")
    job = defs.resolve_implicit_global_asset_job_def()
    tags = {}
    if partition_range is not None:
        tags = {RANGE_START_TAG: partition_range[0], RANGE_END_TAG: partition_range[1]}
    if not in_process(job.executor_def):
        if partition_key is not None:
            tags = {PARTITION_TAG: partition_key}
        return _execute_elsewhere(job, asset_selection, tags, instance, run_config)
    return job.execute_in_process(
        instance=instance,
        asset_selection=asset_selection,
        partition_key=partition_key,
        tags=tags,
        run_config=run_config,
    )


def environment_job() -> JobDefinition:
    """The ``daily_refit`` job (every asset but the on-demand ones) of the definitions the
    environment describes: what ``execute_job`` and every worker process (Dask,
    multiprocess) rebuild, so every setting reaches them through the ``VAE_PIPELINE_*``
    environment (or the ``.env`` file) only. (Dagster's implicit asset job cannot be
    rebuilt through the public ``reconstructable``: its reserved name.)"""
    from vae_pipeline.pipeline.definitions import defs

    return defs.resolve_job_def(DAILY_REFIT_JOB)


def _execute_elsewhere(job, asset_selection, tags, instance, run_config):
    settings = PipelineSettings.from_env()
    chosen = settings.runtime.executor
    if job.executor_def.name != chosen:
        raise ValueError(
            f"the definitions run steps with the {job.executor_def.name} executor but the "
            f"environment says VAE_PIPELINE_EXECUTOR={chosen}: the workers rebuild the "
            "definitions from the environment, so every setting must be there"
        )
    on_demand = [k.to_user_string() for k in asset_selection if k.path[-1] in ON_DEMAND]
    if on_demand:
        raise ValueError(
            f"{', '.join(on_demand)}: on-demand, not in the {DAILY_REFIT_JOB} job that runs "
            f"on the {chosen} executor: dagster asset materialize --select {on_demand[0]}"
        )
    if chosen == "dask" and settings.runtime.dask_address:
        check_dask_scheduler(settings.runtime.dask_address)
    if instance is None or not instance.is_persistent:
        instance = _temporary_instance(settings.storage.db_path.parent)
    return execute_job(
        reconstructable(environment_job),
        instance=instance,
        asset_selection=asset_selection,
        tags=tags,
        run_config=run_config,
    )


_TEMPORARY: dict[Path, DagsterInstance] = {}


def _temporary_instance(folder: Path) -> DagsterInstance:
    """A persistent (SQLite) instance in a fresh folder under ``folder``, shared by the runs of
    this process and removed at its exit: the instance a run's worker processes reach when no
    ``DAGSTER_HOME`` is set (an ephemeral one lives in this process's memory only)."""
    folder = Path(folder).resolve()
    if folder not in _TEMPORARY:
        folder.mkdir(parents=True, exist_ok=True)
        home = Path(tempfile.mkdtemp(prefix=".dagster-run-", dir=folder))
        instance = DagsterInstance.local_temp(str(home))
        _TEMPORARY[folder] = instance

        def _remove() -> None:
            instance.dispose()
            shutil.rmtree(home, ignore_errors=True)

        atexit.register(_remove)
    return _TEMPORARY[folder]


def materialise_day(
    defs: Definitions,
    day: str | pd.Timestamp,
    settings: PipelineSettings,
    instance: DagsterInstance | None = None,
    run_config: dict | None = None,
    log_level: str | None = None,
) -> list:
    """Run the three steps for trading day ``day``; returns the run results (raises on failure)."""
    day = pd.Timestamp(day)
    key = f"{day:%Y-%m-%d}"
    decision = f"{shift_trading_days(day, -settings.evaluation.horizon):%Y-%m-%d}"
    existing = defs.resolve_asset_graph().get_all_asset_keys()
    keys = lambda names: [AssetKey(n) for n in names if AssetKey(n) in existing]  # noqa: E731
    all_keys = [k for k in existing if k.path[-1] not in ON_DEMAND]
    history = (f"{history_start(day, settings):%Y-%m-%d}", key)
    return [
        execute_run(defs, keys(HISTORY_ASSETS), partition_range=history, instance=instance,
                    log_level=log_level),
        execute_run(defs, keys([TRUTH, *DECISION_ASSETS]),  # truth: synthetic only
                    partition_key=decision, instance=instance, run_config=run_config,
                    log_level=log_level),
        execute_run(defs, all_keys, partition_key=key, instance=instance, run_config=run_config,
                    log_level=log_level),
    ]  # fmt: skip


def report_path(results: list) -> Path | None:
    """The report page written by these runs (the ``report`` asset's ``report_path``)."""
    for result in reversed(results):
        for event in result.get_asset_materialization_events():
            mat = event.materialization
            if mat.asset_key == AssetKey("report") and "report_path" in mat.metadata:
                return Path(mat.metadata["report_path"].value)
    return None


# -- backfill -----------------------------------------------------------------------------
# progress(stage, first day, last day, trading days, the run's result or None as it starts)
BackfillProgress = Callable[[str, str, str, int, object], None]


@dataclass
class BackfillPlan:
    """What :func:`backfill` runs: (stage, first key, last key, trading days) in order."""

    days: list[pd.Timestamp]  # the trading days of [A, B]
    complete: list[pd.Timestamp]  # those already stored (skipped; empty when forced)
    runs: list[tuple[str, str, str, int]] = field(default_factory=list)
    stage_assets: dict[str, list[str]] = field(default_factory=dict)

    @property
    def todo(self) -> list[pd.Timestamp]:
        done = set(self.complete)
        return [d for d in self.days if d not in done]


@dataclass
class BackfillResult:
    """The plan, the runs' results, and each day's outcome once they are done."""

    plan: BackfillPlan
    results: list = field(default_factory=list)
    filled: list[pd.Timestamp] = field(default_factory=list)  # to do, and now complete
    incomplete: list[pd.Timestamp] = field(default_factory=list)  # to do, still missing rows
    refused: list[str] = field(default_factory=list)  # "asset check NAME failed: problems"


def stored_days(store: Store, table: str, first, last) -> set[pd.Timestamp]:
    """The days of [first, last] on which ``table`` holds a row."""
    return store.stored_days(table, Span.days(first, last))


def _stretches(days, calendar) -> list[list[pd.Timestamp]]:
    """``days`` cut into runs of consecutive trading days of ``calendar``."""
    position = {d: i for i, d in enumerate(calendar)}
    out: list[list[pd.Timestamp]] = []
    for day in sorted(days):
        if out and position[day] == position[out[-1][-1]] + 1:
            out[-1].append(day)
        else:
            out.append([day])
    return out


def _missing(store: Store, tables: list[str], days: list[pd.Timestamp]) -> set[pd.Timestamp]:
    """The ``days`` on which any of ``tables`` holds no row."""
    if not days:
        return set()
    complete = set(days)
    for table in tables:
        complete &= stored_days(store, table, min(days), max(days))
    return set(days) - complete


def plan_backfill(defs: Definitions, start, end, settings: PipelineSettings,
                  force: bool = False) -> BackfillPlan:  # fmt: skip
    """The runs that fill every daily asset for the trading days of [start, end], their
    history included, skipping the days whose daily tables are all stored (unless ``force``):
    per stage, the days it lacks (the history: [history_start(a), b]; the decisions: [a-H, b];
    the rest: [a, b], for each stretch [a, b] of missing days) cut into consecutive runs."""
    first_day = pd.Timestamp(settings.data.start)
    start, end = max(pd.Timestamp(start), first_day), pd.Timestamp(end)
    days = list(trading_days(start, end))
    graph = defs.resolve_asset_graph()
    names = {k.path[-1] for k in graph.get_all_asset_keys() if graph.get(k).is_partitioned}
    daily = sorted(names - NOT_BACKFILLED)
    history = [n for n in HISTORY_ASSETS if n in names]
    decisions = [n for n in [TRUTH, *DECISION_ASSETS] if n in names]
    rest = [n for n in daily if n not in history and n not in decisions]
    store = store_for(settings, read_only=True)
    complete = sorted(set(days) - _missing(store, daily, days))
    plan = BackfillPlan(
        days=days,
        complete=[] if force else complete,
        stage_assets={"history": history, "decisions": decisions, "days": rest},
    )
    if not (todo := plan.todo):
        return plan
    horizon = settings.evaluation.horizon
    spans = _stretches(todo, days)
    forced = set(todo) if force else set()
    for stage, first_of in (
        ("history", lambda a: history_start(a, settings)),
        ("decisions", lambda a: max(shift_trading_days(a, -horizon), first_day)),
    ):
        wanted = sorted({d for span in spans for d in trading_days(first_of(span[0]), span[-1])})
        need = _missing(store, plan.stage_assets[stage], wanted) | (forced & set(wanted))
        for run in _stretches(need, wanted):
            plan.runs.append((stage, f"{run[0]:%Y-%m-%d}", f"{run[-1]:%Y-%m-%d}", len(run)))
    for run in spans:  # the rest of each missing stretch (the horse race with it)
        plan.runs.append(("days", f"{run[0]:%Y-%m-%d}", f"{run[-1]:%Y-%m-%d}", len(run)))
    return plan


def refused_checks(result) -> list[str]:
    """'ASSET check NAME failed: problems' for each failed blocking check of a run (a ranged
    run's partial refusal is a WARN result naming its days; the drift alert is left out)."""
    found = []
    for check in result.get_asset_check_evaluations():
        partial = check.severity == AssetCheckSeverity.WARN and "failed_days" in check.metadata
        if check.passed or not (check.severity == AssetCheckSeverity.ERROR or partial):
            continue
        problems = check.metadata.get("problems")
        text = str(problems.value) if problems is not None else ""
        text = "; ".join(line.removeprefix("- ") for line in text.splitlines() if line.strip())
        found.append(f"{check.asset_key.to_user_string()} check {check.check_name} failed: {text}")
    return found


def backfill(
    defs: Definitions,
    start,
    end,
    settings: PipelineSettings,
    *,
    force: bool = False,
    instance: DagsterInstance | None = None,
    run_config: dict | None = None,
    progress: BackfillProgress | None = None,
    log_level: str | None = None,
) -> BackfillResult:
    """Fill every daily asset (all but the ``report`` and the on-demand ones) for each trading
    day of [start, end] through :func:`execute_run`: one ranged single run per stage and
    stretch of missing days (:func:`plan_backfill`). Safe to stop and re-run: the days already
    stored are skipped unless ``force``. A day a gate refuses is stored by no asset downstream
    of the refusal and is named in ``refused``; a run that fails outright raises (the later
    stages need it). ``log_level``: Dagster's console logger (see :func:`execute_run`)."""
    plan = plan_backfill(defs, start, end, settings, force)
    outcome = BackfillResult(plan=plan)
    if not plan.runs:
        return outcome
    existing = defs.resolve_asset_graph().get_all_asset_keys()
    race = [AssetKey("horse_race")] if AssetKey("horse_race") in existing else []
    for stage, first, last, count in plan.runs:
        keys = [AssetKey(n) for n in plan.stage_assets[stage]] + (race if stage == "days" else [])
        if progress is not None:
            progress(stage, first, last, count, None)
        result = execute_run(defs, keys, partition_range=(first, last), instance=instance,
                             run_config=run_config if stage != "history" else None,
                             log_level=log_level)  # fmt: skip
        outcome.results.append(result)
        outcome.refused += refused_checks(result)
        if progress is not None:
            progress(stage, first, last, count, result)
    missing = _missing(store_for(settings, read_only=True),
                       [n for names in plan.stage_assets.values() for n in names], plan.days)  # fmt: skip
    outcome.filled = [d for d in plan.todo if d not in missing]
    outcome.incomplete = [d for d in plan.todo if d in missing]
    return outcome
