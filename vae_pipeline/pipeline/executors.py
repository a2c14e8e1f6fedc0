"""Which executor runs the steps of a run, chosen by ``VAE_PIPELINE_EXECUTOR`` (Dagster layer).

- ``in_process`` (default): every step in the run's own process. Right for the local
  DuckDB file, which one process at a time may open.
- ``multiprocess``: one process per step, ``VAE_PIPELINE_MAX_CONCURRENT`` at a time
  (default 2); the ``duckdb`` pool (dagster.yaml) keeps the file's steps one at a time.
- ``k8s``: one Kubernetes job per step (``dagster-k8s``, the ``k8s`` extra).
- ``celery``: steps as Celery tasks on a broker's workers (``dagster-celery``).
- ``dask``: each step a Dask task (``dagster-dask``) on the scheduler at
  ``VAE_PIPELINE_DASK_ADDRESS``, or, when none is given, on a local cluster of
  ``VAE_PIPELINE_DASK_WORKERS`` worker processes (default 2) started for the run and closed
  after it. The workers rebuild the definitions from their own environment (the
  ``VAE_PIPELINE_*`` variables must reach them) and reach the run's instance through its
  ``InstanceRef``: a persistent one (``DAGSTER_HOME``; PostgreSQL when they are on other
  machines).

The three engines are optional extras, imported only when chosen, so a laptop needs none of
them. Executors that spread steps over processes or machines need a storage every worker
can reach (``VAE_PIPELINE_IO=parquet`` with an object-store root), and the instance must
be shared (PostgreSQL: ``deploy/dagster.yaml``). How runs are launched (a local process,
a Kubernetes job per run) is the instance's run launcher, set in its ``dagster.yaml``.
"""

from __future__ import annotations

import importlib

from dagster import ExecutorDefinition, in_process_executor, multiprocess_executor

from vae_pipeline.settings import RuntimeSettings

ENV = "VAE_PIPELINE_EXECUTOR"
# name -> (module, attribute, pip extra)
OPTIONAL = {
    "k8s": ("dagster_k8s", "k8s_job_executor", "k8s"),
    "celery": ("dagster_celery", "celery_executor", "celery"),
    "dask": ("dagster_dask", "dask_executor", "dask"),
}
CHOICES = ("in_process", "multiprocess", *OPTIONAL)


def executor_for(runtime: RuntimeSettings) -> ExecutorDefinition:
    """The executor the runtime settings name, configured from them."""
    return pipeline_executor(
        runtime.executor,
        runtime.max_concurrent,
        dask_address=runtime.dask_address,
        dask_workers=runtime.dask_workers,
    )


def in_process(executor: ExecutorDefinition) -> bool:
    """Whether ``executor`` runs the steps in the run's own process (Dagster's default
    ``multi_or_in_process_executor`` does under ``execute_in_process``)."""
    return executor.name in ("in_process", "multi_or_in_process_executor")


def check_dask_scheduler(address: str, timeout: float = 10.0) -> None:
    """Raise ``ConnectionError`` (one line) unless a Dask scheduler answers at ``address``:
    checked before a run is launched, so a typo fails in seconds rather than as a run whose
    steps never start."""
    from distributed import Client

    try:
        with Client(address, timeout=timeout):
            pass
    except Exception as exc:  # OSError, TimeoutError, ValueError (a malformed address)
        raise ConnectionError(
            f"VAE_PIPELINE_DASK_ADDRESS={address}: no Dask scheduler answers there "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no reply'})"
        ) from None


def pipeline_executor(
    name: str = "in_process",
    max_concurrent: int = 2,
    *,
    dask_address: str | None = None,
    dask_workers: int = 2,
) -> ExecutorDefinition:
    """The executor named ``name`` (``settings.runtime.executor``, ``VAE_PIPELINE_EXECUTOR``)."""
    if name not in CHOICES:
        raise ValueError(f"{ENV}={name!r}: choose one of {', '.join(CHOICES)}")
    if name == "in_process":
        return in_process_executor
    if name == "multiprocess":
        return multiprocess_executor.configured(
            {"max_concurrent": max_concurrent}, name="multiprocess"
        )
    module, attribute, extra = OPTIONAL[name]
    try:
        executor = getattr(importlib.import_module(module), attribute)
    except ImportError as exc:
        raise ImportError(
            f"{ENV}={name} needs {module.replace('_', '-')}: pip install 'vae_pipeline[{extra}]'"
        ) from exc
    if name == "dask":
        from vae_pipeline.pipeline.dask_executor import pipeline_dask_executor

        return pipeline_dask_executor.configured(
            {"address": dask_address, "n_workers": dask_workers}, name="dask"
        )
    return executor
