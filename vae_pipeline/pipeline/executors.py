"""Which executor runs the steps of a run, chosen by ``VAE_PIPELINE_EXECUTOR`` (Dagster layer).

- ``in_process`` (default): every step in the run's own process. Right for the local
  DuckDB file, which one process at a time may open.
- ``multiprocess``: one process per step, ``VAE_PIPELINE_MAX_CONCURRENT`` at a time
  (default 2); the ``duckdb`` pool (dagster.yaml) keeps the file's steps one at a time.
- ``k8s``: one Kubernetes job per step (``dagster-k8s``, the ``k8s`` extra).
- ``celery``: steps as Celery tasks on a broker's workers (``dagster-celery``).
- ``dask``: steps on a Dask cluster (``dagster-dask``).

The three engines are optional extras, imported only when chosen, so a laptop needs none of
them. Executors that spread steps over processes or machines need a storage every worker
can reach (``VAE_PIPELINE_IO=parquet`` with an object-store root), and the instance must
be shared (PostgreSQL: ``deploy/dagster.yaml``). How runs are launched (a local process,
a Kubernetes job per run) is the instance's run launcher, set in its ``dagster.yaml``.
"""

from __future__ import annotations

import importlib

from dagster import ExecutorDefinition, in_process_executor, multiprocess_executor

ENV = "VAE_PIPELINE_EXECUTOR"
# name -> (module, attribute, pip extra)
OPTIONAL = {
    "k8s": ("dagster_k8s", "k8s_job_executor", "k8s"),
    "celery": ("dagster_celery", "celery_executor", "celery"),
    "dask": ("dagster_dask", "dask_executor", "dask"),
}
CHOICES = ("in_process", "multiprocess", *OPTIONAL)


def pipeline_executor(name: str = "in_process", max_concurrent: int = 2) -> ExecutorDefinition:
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
        return getattr(importlib.import_module(module), attribute)
    except ImportError as exc:
        raise ImportError(
            f"{ENV}={name} needs {module.replace('_', '-')}: pip install 'vae_pipeline[{extra}]'"
        ) from exc
