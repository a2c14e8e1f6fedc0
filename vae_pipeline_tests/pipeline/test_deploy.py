"""deploy/: the instance configs, the executor choice, and (in CI, `.ci/postgres.sh`) a real
PostgreSQL instance: a multi-partition backfill launched by dagster-daemon as ranged single runs
(every daily asset has ``BackfillPolicy.single_run``), and a schedule tick through the daemon.

The PostgreSQL tests run only with ``VAE_PG_TESTS=1`` and ``DAGSTER_PG_*`` pointing
at a server (``.ci/postgres.sh`` starts one on 127.0.0.1 and sets both).
"""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from vae_pipeline.pipeline.executors import CHOICES, pipeline_executor
from vae_pipeline.pipeline.runner import DECISION_ASSETS
from vae_pipeline.settings import PipelineSettings

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PG_ENV = {
    "DAGSTER_PG_HOST": "127.0.0.1",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "secret",
    "DAGSTER_PG_DB": "dagster",
}


def _instance_config(tmp_path, monkeypatch, source: Path) -> dict:
    from dagster._core.instance.config import dagster_instance_config

    for key, value in PG_ENV.items():
        monkeypatch.setenv(key, os.environ.get(key, value))
    shutil.copy(source, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))
    return config


def test_deploy_instance_is_postgres_with_queued_runs_and_pools(tmp_path, monkeypatch):
    config = _instance_config(tmp_path, monkeypatch, REPO / "deploy" / "dagster.yaml")
    assert set(config["storage"]["postgres"]["postgres_db"]) >= {"hostname", "db_name"}
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["run_launcher"]["class"] == "DefaultRunLauncher"
    pools = config["concurrency"]["pools"]
    assert (pools["default_limit"], pools["granularity"]) == (1, "op")
    assert pools["op_granularity_run_buffer"] >= 1  # parallel runs, steps queue on the pool
    text = (REPO / "deploy" / "dagster.yaml").read_text()
    assert "password:\n        env: DAGSTER_PG_PASSWORD" in text  # no secret in the file


def test_k8s_instance_config_validates(tmp_path, monkeypatch):
    pytest.importorskip("dagster_k8s")
    from dagster._config import process_config
    from dagster_k8s import K8sRunLauncher

    monkeypatch.setenv("DAGSTER_K8S_NAMESPACE", "vae")
    monkeypatch.setenv("VAE_PIPELINE_IMAGE", "registry.example/vae_pipeline:1")
    config = _instance_config(tmp_path, monkeypatch, REPO / "deploy" / "k8s" / "dagster.yaml")
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    result = process_config(K8sRunLauncher.config_type(), launcher["config"])
    assert result.success, result.errors
    assert result.value["job_image"] == "registry.example/vae_pipeline:1"


def test_executor_is_chosen_by_the_environment(monkeypatch):
    assert PipelineSettings.from_env({}).runtime.executor == "in_process"
    chosen = PipelineSettings.from_env({"VAE_PIPELINE_EXECUTOR": "multiprocess"})
    assert chosen.runtime.executor == "multiprocess"
    with pytest.raises(ValueError, match="VAE_PIPELINE_EXECUTOR"):
        PipelineSettings.from_env({"VAE_PIPELINE_EXECUTOR": "spark"})
    with pytest.raises(ValueError, match="choose one of"):
        pipeline_executor("spark")
    assert set(CHOICES) == {"in_process", "multiprocess", "k8s", "celery", "dask"}
    assert pipeline_executor("in_process").name == "in_process"
    assert pipeline_executor("multiprocess").name == "multiprocess"


def test_optional_engines_are_imported_lazily_and_name_their_extra(monkeypatch):
    from vae_pipeline.pipeline import executors

    monkeypatch.setitem(executors.OPTIONAL, "dask", ("no_such_dagster_dask", "x", "dask"))
    with pytest.raises(ImportError, match=r"vae_pipeline\[dask\]"):
        pipeline_executor("dask")
    # importing the package never pulls in an engine
    code = "import sys, vae_pipeline.pipeline.definitions; print(any(m.startswith(('dagster_k8s', 'dagster_celery', 'dagster_dask')) for m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "VAE_PIPELINE_DB": "/tmp/unused_vae.duckdb"},
    )
    assert out.stdout.strip().endswith("False"), out.stderr[-2000:]


def test_definitions_use_the_chosen_executor(monkeypatch, tmp_path):
    from vae_pipeline.pipeline.definitions import build_definitions
    from vae_pipeline_tests.conftest import tiny_settings

    monkeypatch.setenv("VAE_PIPELINE_EXECUTOR", "multiprocess")
    defs = build_definitions(tiny_settings(tmp_path / "x.duckdb"))
    assert defs.resolve_job_def("daily_refit").executor_def.name == "multiprocess"
    monkeypatch.delenv("VAE_PIPELINE_EXECUTOR")
    defs = build_definitions(tiny_settings(tmp_path / "x.duckdb"))
    assert defs.resolve_job_def("daily_refit").executor_def.name == "multi_or_in_process_executor"


# -- PostgreSQL + dagster-daemon (CI: .ci/postgres.sh) ------------------------------------
PG = os.environ.get("VAE_PG_TESTS") == "1"
needs_pg = pytest.mark.skipif(not PG, reason="needs .ci/postgres.sh (VAE_PG_TESTS=1)")
HISTORY = ("2024-01-02", "2024-05-31")
DECISIONS = ("2024-05-30", "2024-06-05")  # decision chain: d - H of every backfilled day too
DAYS = ("2024-06-03", "2024-06-05")  # the backfilled partitions (H = 2)
TICK_PARTITION = "2024-06-07"
# the decision chain as `vae backfill` selects it: the synthetic truth, the panel, every model
# the estimator registry needs and the covariances (covariance_estimates reads them all)
MODEL_ASSETS = ["ground_truth", *DECISION_ASSETS]
DAY_ASSETS = ["raw_returns", "market_observables", "latent_factors", "factor_interpretation",
              "minvar_scorecard", "anomaly_report", "stock_embedding"]  # fmt: skip


RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def _pg_connect(dbname: str):
    import psycopg2

    con = psycopg2.connect(
        host=os.environ["DAGSTER_PG_HOST"], port=os.environ["DAGSTER_PG_PORT"],
        user=os.environ["DAGSTER_PG_USER"], password=os.environ.get("DAGSTER_PG_PASSWORD", ""),
        dbname=dbname,
    )  # fmt: skip
    con.autocommit = True
    return con


def _pg_execute(sql: str) -> None:
    """One statement outside a transaction (CREATE / DROP DATABASE need that)."""
    con = _pg_connect("postgres")
    try:
        con.cursor().execute(sql)
    finally:
        con.close()


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory):
    """A fresh PostgreSQL database as the instance, the history ingested through the CLI,
    and `dagster-daemon run` on a workspace with the pipeline and an every-minute schedule."""
    db = f"vae_ci_{uuid.uuid4().hex[:8]}"
    _pg_execute(f"create database {db}")
    work = tmp_path_factory.mktemp("pg")
    home = work / "home"
    home.mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
    (work / "workspace.yaml").write_text(yaml.safe_dump({"load_from": [{"python_module": {
        "module_name": "vae_pipeline_tests.deploy_location",
        "working_directory": str(REPO)}}]}))  # fmt: skip
    env = {
        **os.environ, "DAGSTER_HOME": str(home), "DAGSTER_PG_DB": db,
        "VAE_PIPELINE_DB": str(work / "ci.duckdb"), "VAE_PIPELINE_START": "2024-01-02",
        "VAE_PIPELINE_N_NAMES": "20", "VAE_PIPELINE_WINDOW": "60", "VAE_PIPELINE_HORIZON": "2",
        "VAE_PIPELINE_EPOCHS": "30", "VAE_PIPELINE_MIN_NAMES": "5",
        "VAE_PIPELINE_TICK_PARTITION": TICK_PARTITION, "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }  # fmt: skip
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    history = subprocess.run(
        [str(BIN / "dagster"), "asset", "materialize", "-m", "vae_pipeline_tests.deploy_location",
         "--select", "raw_returns,market_observables", "--partition-range", "...".join(HISTORY)],
        cwd=REPO, env=env, timeout=300, capture_output=True, text=True,
    )  # fmt: skip
    assert history.returncode == 0, history.stderr[-4000:]
    log = open(work / "daemon.log", "w")  # noqa: SIM115
    daemon = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-w", str(work / "workspace.yaml")],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        yield SimpleNamespace(env=env, work=work, db=work / "ci.duckdb", started=time.time())
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
        log.close()
        print((work / "daemon.log").read_text()[-3000:])
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
        _pg_execute(f"drop database if exists {db} with (force)")


def _instance():
    from dagster import DagsterInstance

    return DagsterInstance.get()  # DAGSTER_HOME = the fixture's PostgreSQL instance


def _rows(db: Path, table: str, day: str) -> int:
    from vae_pipeline.store.connection import connect

    with connect(db, read_only=True) as con:
        return con.execute(f'select count(*) from main."{table}" where date = ?', [day]).fetchall()[
            0
        ][0]


def _trading_days(first: str, last: str) -> list[str]:
    from vae_pipeline.core.calendar import trading_days

    return [f"{d:%Y-%m-%d}" for d in trading_days(first, last)]


@pytest.mark.slow
@needs_pg
@pytest.mark.timeout(600)
def test_backfill_runs_as_ranged_single_runs_through_the_daemon_on_postgres(pg_stack):
    from dagster import AssetKey, DagsterRunStatus, RunsFilter
    from dagster._core.definitions.selector import (
        PartitionRangeSelector,
        PartitionsByAssetSelector,
        PartitionsSelector,
    )
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill

    from vae_pipeline_tests.deploy_location import defs

    def selector(name, first, last):
        ranges = [PartitionRangeSelector(start=first, end=last)]
        return PartitionsByAssetSelector(
            asset_key=AssetKey(name), partitions=PartitionsSelector(ranges=ranges)
        )

    with _instance() as instance:
        backfill_id = uuid.uuid4().hex[:8]
        backfill = PartitionBackfill.from_partitions_by_assets(
            backfill_id=backfill_id, asset_graph=defs.resolve_asset_graph(),
            backfill_timestamp=time.time(), tags={}, dynamic_partitions_store=instance,
            partitions_by_assets=[selector(n, *DECISIONS) for n in MODEL_ASSETS]
            + [selector(n, *DAYS) for n in DAY_ASSETS],
            title="ci backfill", description=None, run_config=None,
        )  # fmt: skip
        instance.add_backfill(backfill)
        deadline = time.time() + 480
        while instance.get_backfill(backfill_id).status == BulkActionStatus.REQUESTED:
            assert time.time() < deadline, "the backfill did not finish in 8 minutes"
            time.sleep(3)
        status = instance.get_backfill(backfill_id).status
        runs = instance.get_runs(RunsFilter(tags={"dagster/backfill": backfill_id}))
        failed = [r.run_id for r in runs if r.status != DagsterRunStatus.SUCCESS]
        assert status == BulkActionStatus.COMPLETED_SUCCESS and not failed, (status, failed)
        spans, messages, ranges = [], [], []
        for run in runs:
            record = instance.get_run_record_by_id(run.run_id)
            spans.append((record.start_time, record.end_time))
            messages += [e.message or "" for e in instance.all_logs(run.run_id)]
            ranges.append((run.tags.get(RANGE_START_TAG), run.tags.get(RANGE_END_TAG)))
        blocked = sum("blocked by limit for pool duckdb" in m for m in messages)
        print(f"{len(runs)} runs, ranges {sorted(ranges)}, {blocked} pool waits, "
              f"{max(e for _, e in spans) - min(s for s, _ in spans):.0f} s")  # fmt: skip
    # ranged single runs: every run covers a partition range (its tags) inside the requested
    # ones, some more than one day, and there are far fewer runs than asset partitions (one
    # run per partition before the assets took BackfillPolicy.single_run)
    assert all(start and end for start, end in ranges), ranges
    assert all(DECISIONS[0] <= start <= end <= DAYS[1] for start, end in ranges), ranges
    assert any(start < end for start, end in ranges), ranges
    partitions = len(MODEL_ASSETS) * len(_trading_days(*DECISIONS)) + len(DAY_ASSETS) * len(
        _trading_days(*DAYS)
    )
    assert len(runs) < partitions / 4, (len(runs), partitions)
    assert not any("Could not set lock" in m for m in messages)
    for day in _trading_days(*DECISIONS):
        for table in MODEL_ASSETS:
            assert _rows(pg_stack.db, table, day) > 0, (table, day)
    for day in _trading_days(*DAYS):
        for table in DAY_ASSETS:
            assert _rows(pg_stack.db, table, day) > 0, (table, day)


@pytest.mark.slow
@needs_pg
@pytest.mark.timeout(300)
def test_schedule_ticks_through_the_daemon_on_postgres(pg_stack):
    from dagster import DagsterRunStatus, RunsFilter
    from dagster._core.scheduler.instigation import InstigatorType, TickStatus

    from vae_pipeline_tests.deploy_location import TICK_SCHEDULE

    with _instance() as instance:
        deadline = time.time() + 200
        while True:
            runs = instance.get_runs(RunsFilter(tags={"dagster/schedule_name": TICK_SCHEDULE}))
            if runs and runs[0].status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE):
                break
            assert time.time() < deadline, "no scheduled run finished within 200 s"
            time.sleep(3)
        assert runs[0].status == DagsterRunStatus.SUCCESS
        assert runs[0].tags["dagster/partition"] == TICK_PARTITION
        states = [s for s in instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
                  if s.name == TICK_SCHEDULE]  # fmt: skip
        assert states, "the daemon never recorded the schedule"
        ticks = instance.get_ticks(states[0].instigator_origin_id, states[0].selector_id)
        assert any(t.status == TickStatus.SUCCESS and runs[0].run_id in t.run_ids for t in ticks)
    assert _rows(pg_stack.db, "raw_returns", TICK_PARTITION) == 20


# -- shared storage: Parquet files (VAE_PIPELINE_IO=parquet) -------------------------------
def _parquet_defs(tmp_path, monkeypatch):
    from vae_pipeline.pipeline.definitions import build_definitions
    from vae_pipeline_tests.conftest import tiny_settings

    monkeypatch.setenv("VAE_PIPELINE_IO", "parquet")
    monkeypatch.setenv("VAE_PIPELINE_PARQUET_ROOT", str(tmp_path / "lake"))
    settings = tiny_settings(tmp_path / "unused.duckdb")
    return settings, build_definitions(settings)


def test_parquet_storage_writes_one_file_per_partition_and_reads_windows(tmp_path, monkeypatch):
    import pandas as pd
    from dagster import AssetKey, DagsterInstance

    from vae_pipeline.pipeline.io_managers import ParquetIOManager

    settings, defs = _parquet_defs(tmp_path, monkeypatch)
    assert isinstance(defs.resources["io_manager"], ParquetIOManager)
    job, instance = defs.resolve_implicit_global_asset_job_def(), DagsterInstance.ephemeral()
    ranged = job.execute_in_process(
        instance=instance, asset_selection=[AssetKey("raw_returns")],
        tags={"dagster/asset_partition_range_start": "2024-01-02",
              "dagster/asset_partition_range_end": "2024-04-05"},
    )  # fmt: skip
    assert ranged.success
    files = sorted(p.name for p in (tmp_path / "lake" / "raw_returns").glob("*.parquet"))
    assert files[0] == "2024-01-02.parquet" and files[-1] == "2024-04-05.parquet"
    assert "2024-01-15.parquet" not in files  # a holiday (MLK day) stores nothing
    day = pd.read_parquet(tmp_path / "lake" / "raw_returns" / "2024-04-05.parquet")
    assert (
        len(day) == settings.data.n_names
    )  # date: a Parquet DATE (date32), as declared in store.schemas
    assert (pd.to_datetime(day["date"]) == pd.Timestamp("2024-04-05")).all()
    result = job.execute_in_process(
        instance=instance,
        partition_key="2024-04-05",
        asset_selection=[AssetKey("standardised_panel")],
    )
    assert result.success  # its 60-day window came back from ~65 files
    scaler = pd.read_parquet(tmp_path / "lake" / "standardised_panel" / "2024-04-05.parquet")
    assert (
        len(scaler) == settings.data.n_names
        and (scaler["n_obs"] == settings.evaluation.window).all()
    )


@pytest.mark.slow
def test_whole_graph_on_parquet_storage(tmp_path, monkeypatch):
    import pandas as pd
    from dagster import AssetKey, DagsterInstance

    from vae_pipeline.core.calendar import shift_trading_days
    from vae_pipeline.pipeline.runner import DECISION_ASSETS, HISTORY_ASSETS, history_start
    from vae_pipeline_tests.conftest import DAY, DECISION
    from vae_pipeline_tests.pipeline.test_assets import PARTITIONED

    settings, defs = _parquet_defs(tmp_path, monkeypatch)
    job, instance = defs.resolve_implicit_global_asset_job_def(), DagsterInstance.ephemeral()

    def run(names, **kwargs):
        result = job.execute_in_process(
            instance=instance, asset_selection=[AssetKey(n) for n in names], **kwargs
        )
        assert result.success, names

    # as runner.materialise_day, without the report (it reads the DuckDB file itself)
    run(HISTORY_ASSETS, tags={
        "dagster/asset_partition_range_start": f"{history_start(pd.Timestamp(DAY), settings):%Y-%m-%d}",
        "dagster/asset_partition_range_end": f"{shift_trading_days(DAY, -1):%Y-%m-%d}"})  # fmt: skip
    run(["ground_truth", *DECISION_ASSETS], partition_key=DECISION)
    run([*PARTITIONED, "horse_race"], partition_key=DAY)
    for name in [*PARTITIONED, *DECISION_ASSETS]:
        assert (tmp_path / "lake" / name / f"{DAY}.parquet").exists(), name
    assert (tmp_path / "lake" / "horse_race" / "all.parquet").exists()
    assert AssetKey("horse_race") in defs.resolve_asset_graph().get_all_asset_keys()
