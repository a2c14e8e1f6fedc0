"""The ``dask`` executor: each step of a run one Dask task (Dagster layer, ``dagster-dask``).

dagster-dask's ``DaskExecutor`` does the work (``query_on_dask_worker`` rebuilds the job on
the worker from its reconstructable pointer and runs one step against the run's instance);
its ``execute`` is re-stated here, in a few lines, for three defects of dagster-dask 0.29 with
the Dask releases of 2025-26:

- it hands the ``DagsterRun`` itself to ``Client.submit``; Dask's task parser walks every
  tuple argument, and a run of assets with a ``pool`` carries a ``RunOpConcurrency`` record
  that refuses iteration, so no step ever started. Here the worker gets the run id and reads
  the run from the instance (``DagsterInstance.get_run_by_id``);
- its task keys are ``job.step``: two runs of one job at once on a shared scheduler (a
  backfill's parallel runs) collide, and Dask hands the second the first one's result
  (dagster-io/dagster#21418). Here the run id is part of the key;
- the local cluster it starts is never closed (its worker processes live until the
  interpreter exits). Here it is closed when the run ends.

Where the steps run: the scheduler at ``address`` (``VAE_PIPELINE_DASK_ADDRESS``), or a
``LocalCluster`` of ``n_workers`` single-threaded worker processes started for the run.
Dask's nanny starts its workers with ``OMP_NUM_THREADS=1`` (and MKL / OpenBLAS): torch and
BLAS run one thread per worker.
"""

from __future__ import annotations

import logging

from dagster import (
    DagsterInstance,
    Field,
    Noneable,
    executor,
    multiple_process_executor_requirements,
)
from dagster_dask.executor import (
    DaskExecutor,
    get_dask_resource_requirements,
    query_on_dask_worker,
)


def run_step(dependencies, recon_job, run_id, run_config, step_keys, instance_ref, known_state):
    """On a worker: the run's step(s), the run read from the instance by id."""
    with DagsterInstance.from_ref(instance_ref) as instance:
        run = instance.get_run_by_id(run_id)
    if run is None:
        raise LookupError(f"run {run_id} is not in the instance the worker reached")
    return query_on_dask_worker(
        dependencies, recon_job, run, run_config, step_keys, instance_ref, known_state
    )


class PipelineDaskExecutor(DaskExecutor):
    """dagster-dask's executor with the run passed by id, run-unique task keys, and a local
    cluster closed after its run."""

    def __init__(self, address: str | None, n_workers: int) -> None:
        super().__init__(
            "existing" if address else "local", {"address": address} if address else {}
        )
        self.address = address
        self.n_workers = int(n_workers)

    def execute(self, plan_context, execution_plan):
        import dask.distributed
        from dask.distributed import LocalCluster

        if not plan_context.instance.is_persistent:
            raise ValueError("the dask executor needs a persistent Dagster instance (DAGSTER_HOME)")
        if self.address:
            with dask.distributed.Client(self.address) as client:
                yield from self._submit(client, plan_context, execution_plan)
            return
        with (
            LocalCluster(
                n_workers=self.n_workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,  # several runs (and tests) may start clusters at once
                silence_logs=logging.WARNING,
            ) as cluster,
            dask.distributed.Client(cluster) as client,
        ):
            yield from self._submit(client, plan_context, execution_plan)

    def _submit(self, client, plan_context, execution_plan):
        import dask.distributed

        run = plan_context.dagster_run
        instance_ref = plan_context.instance.get_ref()
        futures = {}
        for level in execution_plan.get_steps_to_execute_by_level():
            for step in level:
                dependencies = [
                    futures[key] for step_input in step.step_inputs
                    for key in step_input.dependency_keys
                ]  # fmt: skip
                futures[step.key] = client.submit(
                    run_step,
                    dependencies,
                    plan_context.reconstructable_job,
                    run.run_id,
                    plan_context.run_config,
                    [step.key],
                    instance_ref,
                    execution_plan.known_state,
                    key=f"{plan_context.job_name}.{step.key}.{run.run_id}",
                    resources=get_dask_resource_requirements(step.tags),
                    pure=False,
                )
        for _, events in dask.distributed.as_completed(list(futures.values()), with_results=True):
            yield from events


@executor(
    name="dask",
    requirements=multiple_process_executor_requirements(),
    config_schema={
        "address": Field(
            Noneable(str),
            default_value=None,
            description="a Dask scheduler (tcp://host:8786); none: a local cluster for the run",
        ),
        "n_workers": Field(int, default_value=2, description="worker processes of a local cluster"),
    },
)
def pipeline_dask_executor(init_context) -> PipelineDaskExecutor:
    """Each step a Dask task, on the scheduler at ``address`` or on a local cluster of
    ``n_workers`` processes started for the run (``vae_pipeline.pipeline.dask_executor``)."""
    config = init_context.executor_config
    return PipelineDaskExecutor(config["address"], config["n_workers"])
