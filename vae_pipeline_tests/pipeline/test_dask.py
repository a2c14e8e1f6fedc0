"""The Dask executor over Parquet storage, run for real (issue 15): ``vae run`` with
``VAE_PIPELINE_EXECUTOR=dask`` runs every step as a Dask task in a worker process of a local
cluster, stores on a Parquet root, and gives the same answer as the default in-process
DuckDB run; misconfiguration fails in one line, never as a quiet in-process run."""

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance, RunsFilter

from vae_pipeline.pipeline.executors import executor_for
from vae_pipeline.settings import PipelineSettings, RuntimeSettings
from vae_pipeline.store import DuckDBStore, ModelStore, ParquetStore, Span
from vae_pipeline_tests.conftest import DAY

REPO = Path(__file__).resolve().parents[2]
# the tiny pipeline of conftest.tiny_settings, as the environment every worker reads
TINY = {"START": "2024-01-02", "N_NAMES": "20", "WINDOW": "60", "HORIZON": "5", "EPOCHS": "10",
        "MIN_NAMES": "5", "SEED": "42"}  # fmt: skip
MODELS = ["trained_vae", "trained_cvae", "trained_vae_hetero", "trained_cvae_hetero",
          "trained_vae_reference", "trained_cvae_reference", "trained_vae_mlp"]  # fmt: skip


def _env(folder: Path, **settings: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAE_PIPELINE_", "DAGSTER_"))}
    env.update({f"VAE_PIPELINE_{k}": v for k, v in {**TINY, **settings}.items()})
    env.update(
        VAE_PIPELINE_ENV_FILE=os.devnull,
        VAE_PIPELINE_DB=str(folder / "data" / "pipeline.duckdb"),
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        OMP_NUM_THREADS="1",  # Dask's nanny starts its workers with one thread: the same here
    )
    return env


def vae(folder: Path, *args: str, timeout: int = 900, home: Path | None = None, **settings: str):
    """``vae ARGS`` in a fresh process with the given settings (and ``DAGSTER_HOME=home``);
    (process, stdout, stderr)."""
    folder.mkdir(parents=True, exist_ok=True)
    env = _env(folder, **settings) | ({"DAGSTER_HOME": str(home)} if home else {})
    proc = subprocess.Popen(
        [sys.executable, "-c", "from vae_pipeline.cli import app; app()", *args],
        cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    out, err = proc.communicate(timeout=timeout)
    return proc, out, err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- configuration (fast) ---------------------------------------------------------------
# dagster-dask is the `dask` extra, not the `dev` one: a plain `make test` skips what needs it,
# and .ci/run installs the extra and runs this whole file.
needs_dagster_dask = pytest.mark.skipif(
    importlib.util.find_spec("dagster_dask") is None,
    reason="dagster-dask is not installed: pip install -e '.[dask]'",
)


@needs_dagster_dask
def test_dask_executor_is_configured_from_the_settings():
    local = executor_for(RuntimeSettings(executor="dask", dask_workers=3))
    assert local.name == "dask" and local.config_schema is not None
    remote = executor_for(RuntimeSettings(executor="dask", dask_address="tcp://sched:8786"))
    assert remote.name == "dask"
    s = PipelineSettings.from_env(
        {
            "VAE_PIPELINE_EXECUTOR": "dask",
            "VAE_PIPELINE_DASK_ADDRESS": "tcp://sched:8786",
            "VAE_PIPELINE_DASK_WORKERS": "4",
        }  # fmt: skip
    )
    assert (s.runtime.dask_address, s.runtime.dask_workers) == ("tcp://sched:8786", 4)


def test_a_missing_engine_fails_at_load_in_one_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "dagster_dask", None)  # as if not installed
    with pytest.raises(ValueError, match=r"VAE_PIPELINE_EXECUTOR=dask needs dagster-dask"):
        PipelineSettings.from_env({"VAE_PIPELINE_EXECUTOR": "dask"})


def test_vae_run_without_dagster_dask_says_so_and_runs_nothing(tmp_path):
    shadow = tmp_path / "shadow" / "dagster_dask"  # an installation that cannot import
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError(\"No module named 'dagster_dask'\")\n")
    root = tmp_path / "lake"
    env_path = f"{tmp_path / 'shadow'}{os.pathsep}{REPO}"
    proc = subprocess.run(
        [sys.executable, "-c", "from vae_pipeline.cli import app; app()", "run", "--day", DAY],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env={**_env(tmp_path, EXECUTOR="dask", IO="parquet", PARQUET_ROOT=str(root)),
             "PYTHONPATH": env_path},
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "needs dagster-dask" in lines[0], proc.stderr[-2000:]
    assert "pip install 'vae_pipeline[dask]'" in lines[0]
    assert not root.exists() and "Traceback" not in proc.stderr


@needs_dagster_dask
def test_vae_run_with_a_bad_scheduler_address_fails_fast_in_one_line(tmp_path):
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    root = tmp_path / "lake"
    proc, out, err = vae(tmp_path, "run", "--day", DAY, timeout=300, EXECUTOR="dask",
                         DASK_ADDRESS=address, IO="parquet", PARQUET_ROOT=str(root))  # fmt: skip
    assert proc.returncode == 1, err[-2000:]
    errors = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, err[-3000:]
    assert f"VAE_PIPELINE_DASK_ADDRESS={address}: no Dask scheduler answers there" in errors[0]
    assert "Traceback" not in err
    assert not ParquetStore(str(root)).exists()  # nothing ran in-process instead


def test_definitions_that_differ_from_the_environment_are_refused(tmp_path, monkeypatch):
    """The workers rebuild the definitions from the environment: a run of definitions built
    from other settings is refused before anything runs (never a quiet in-process run)."""
    from vae_pipeline.pipeline.definitions import build_definitions
    from vae_pipeline.pipeline.runner import execute_run
    from vae_pipeline_tests.conftest import tiny_settings

    defs = build_definitions(tiny_settings(tmp_path / "x.duckdb", executor="multiprocess"))
    with pytest.raises(ValueError, match="VAE_PIPELINE_EXECUTOR=in_process"):
        execute_run(defs, [AssetKey("raw_returns")], partition_key=DAY)


def test_without_dagster_home_runs_get_a_temporary_instance_removed_at_exit(tmp_path):
    """What a Dask run of `vae run` uses when DAGSTER_HOME is unset: a persistent instance
    (its workers reach it by reference) in a folder under the data folder, gone at exit."""
    code = (
        "import sys; from vae_pipeline.pipeline.runner import _temporary_instance as t; "
        "i = t(sys.argv[1]); assert i is t(sys.argv[1]); "
        "print(i.is_persistent, i.root_directory)"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "data")],
                          capture_output=True, text=True, env=_env(tmp_path), timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    persistent, home = proc.stdout.split()
    assert persistent == "True" and Path(home).parent == tmp_path / "data"
    assert Path(home).name.startswith(".dagster-run-") and not Path(home).exists()


# -- the whole graph on a local Dask cluster over Parquet (slow) ------------------------
@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Partition DAY by ``vae run``: in-process on DuckDB (the default), and on a local Dask
    cluster of two worker processes over a Parquet root with a persistent instance."""
    base = tmp_path_factory.mktemp("dask")
    default, dask = base / "default", base / "dask"
    proc, out, err = vae(default, "run", "--day", DAY)
    assert proc.returncode == 0, err[-3000:]
    home = dask / "home"
    home.mkdir(parents=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    root = dask / "lake"
    dask_proc, dask_out, dask_err = vae(
        dask, "run", "--day", DAY, home=home, EXECUTOR="dask", DASK_WORKERS="2", IO="parquet",
        PARQUET_ROOT=str(root),
    )  # fmt: skip
    assert dask_proc.returncode == 0, dask_err[-3000:]
    return {
        "default": DuckDBStore(default / "data" / "pipeline.duckdb", read_only=True),
        "dask": ParquetStore(str(root)),
        "root": root,
        "out": dask_out,
        "pid": dask_proc.pid,
        "data": dask / "data",
        "home": home,
    }


@pytest.mark.slow
def test_dask_run_finishes_with_its_report_on_the_parquet_root(two_runs):
    out = two_runs["out"]
    report = two_runs["root"] / "reports" / f"report_{DAY}.html"
    assert f"report: {report}" in out.replace("\n", "")
    assert report.stat().st_size > 100_000  # plotly inlined
    assert "Min-variance scorecard" in out
    assert not list(two_runs["data"].glob("*.duckdb"))  # nothing on this path needs the file


@pytest.mark.slow
def test_every_step_ran_in_a_dask_worker_process(two_runs):
    with DagsterInstance.from_config(str(two_runs["home"])) as instance:
        runs = instance.get_runs(filters=RunsFilter())
        assert len(runs) == 3 and all(r.is_success for r in runs)
        launcher, workers, steps = set(), set(), 0
        for run in runs:
            for record in instance.all_logs(run.run_id):
                event = record.dagster_event
                if event is None:
                    continue
                if event.event_type == DagsterEventType.RUN_START:
                    launcher.add(event.pid)
                elif event.event_type == DagsterEventType.STEP_SUCCESS:
                    workers.add(event.pid)
                    steps += 1
    assert launcher == {two_runs["pid"]}  # the runs were launched by `vae run` itself
    assert steps >= 20 and two_runs["pid"] not in workers  # ... and no step ran there
    assert len(workers) >= 2  # two workers per run's cluster (a fresh cluster per run)


@pytest.mark.slow
def test_dask_run_equals_the_default_run(two_runs):
    day = Span.days(DAY, DAY)
    for table in ["minvar_scorecard", "anomaly_report", "covariance_estimates",
                  "latent_factors", "horse_race"]:  # fmt: skip
        a, b = (
            two_runs["default"].read(table, day if table != "horse_race" else None),
            two_runs["dask"].read(table, day if table != "horse_race" else None),
        )
        assert len(a) > 0, table
        order = [c for c in ("date", "estimator", "ticker", "name") if c in a.columns]
        pd.testing.assert_frame_equal(
            a.sort_values(order, ignore_index=True), b.sort_values(order, ignore_index=True),
            check_exact=True, obj=table,
        )  # fmt: skip
    for name in MODELS:  # the stored weights, byte for byte
        a = ModelStore(two_runs["default"]).records(name, day)
        b = ModelStore(two_runs["dask"]).records(name, day)
        assert len(a) == 1 and bytes(a["weights"].iloc[0]) == bytes(b["weights"].iloc[0]), name


@pytest.mark.slow
def test_dashboard_reads_the_parquet_root(two_runs, monkeypatch):
    """The Streamlit app over the Dask run's Parquet root, no DuckDB file anywhere."""
    from streamlit.testing.v1 import AppTest

    for key, value in {**TINY, "IO": "parquet", "PARQUET_ROOT": str(two_runs["root"]),
                       "DB": str(two_runs["data"] / "absent.duckdb")}.items():  # fmt: skip
        monkeypatch.setenv(f"VAE_PIPELINE_{key}", value)
    app = REPO / "vae_pipeline" / "dashboard.py"
    at = AppTest.from_file(str(app), default_timeout=180).run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert len(at.get("plotly_chart")) >= 5
    assert not (two_runs["data"] / "absent.duckdb").exists()


def test_reports_land_in_the_storage_the_workers_share(tmp_path):
    from vae_pipeline.report.html import report_file
    from vae_pipeline_tests.conftest import tiny_settings

    name = f"report_{DAY}.html"
    duck = tiny_settings(tmp_path / "db" / "x.duckdb").storage
    assert report_file(duck, DAY) == (tmp_path / "db" / "reports" / name).resolve()
    lake = tiny_settings(tmp_path / "db" / "x.duckdb", io="parquet",
                         parquet_root=str(tmp_path / "lake")).storage  # fmt: skip
    assert report_file(lake, DAY) == (tmp_path / "lake" / "reports" / name).resolve()
    bucket = tiny_settings(tmp_path / "db" / "x.duckdb", io="parquet",
                           parquet_root="s3://bucket/vae").storage  # fmt: skip
    assert report_file(bucket, DAY) == (tmp_path / "db" / "reports" / name).resolve()
