"""cli.progress.RunFollower on a three-asset toy job: one line per step, the failed gate's
problems in its line, the same on an ephemeral instance (``execute_in_process``) and on a
persistent one whose steps run in subprocesses (``dagster.execute_job``, multiprocess)."""

from __future__ import annotations

import io

import pytest
from dagster import (
    DagsterInstance,
    Definitions,
    ExecuteInProcessResult,
    StaticPartitionsDefinition,
    asset,
    define_asset_job,
    execute_job,
    multiprocess_executor,
    reconstructable,
)
from rich.console import Console

# Light imports only: the multiprocess executor re-imports this module in every step's process.
from vae_pipeline.pipeline.checks import gate, gate_specs

QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}  # what vae run passes
PARTITIONS = StaticPartitionsDefinition(["good", "bad"])


@asset(partitions_def=PARTITIONS)
def prices(context) -> int:
    context.log.warning("two names dropped: stale prices")
    return 1 if context.partition_key == "good" else -1


@asset(partitions_def=PARTITIONS, check_specs=gate_specs("returns", ["finite_bounded"]))
def returns(context, prices: int):
    problems = {"finite_bounded": [] if prices > 0 else ["3 returns below -95 %"]}
    yield from gate(context, prices, problems)


@asset(partitions_def=PARTITIONS)
def report(returns: int) -> int:
    return returns + 1


def toy_job():
    defs = Definitions(
        assets=[prices, returns, report],
        jobs=[define_asset_job("toy")],  # partitioned like its assets
        executor=multiprocess_executor.configured({"max_concurrent": 1}),
    )
    return defs.resolve_job_def("toy")


def _follow(instance, launch):
    from vae_pipeline.cli.progress import RunFollower

    buffer = io.StringIO()
    console = Console(file=buffer, width=200, force_terminal=False)
    with RunFollower(instance, console, poll_seconds=0.05) as follower:
        result = launch()
    return follower, buffer.getvalue(), result


def _in_process(instance, partition):
    return toy_job().execute_in_process(
        instance=instance,
        partition_key=partition,
        raise_on_error=False,
        run_config=QUIET,
    )


def test_quiet_run_config_is_what_execute_run_builds():
    from vae_pipeline.pipeline.runner import with_log_level

    assert with_log_level(None, "critical") == QUIET
    both = with_log_level({"ops": {"x": {}}}, "DEBUG")
    assert both == {"ops": {"x": {}}, "loggers": {"console": {"config": {"log_level": "DEBUG"}}}}
    assert with_log_level({"ops": {}}, None) == {"ops": {}}


def test_one_line_per_step_in_process(capsys):
    instance = DagsterInstance.ephemeral()
    follower, text, result = _follow(instance, lambda: _in_process(instance, "good"))
    assert isinstance(result, ExecuteInProcessResult) and result.success
    lines = text.splitlines()
    assert [line.split()[:3] for line in lines if line.startswith("✓")] == [
        ["✓", "prices", "good"],
        ["✓", "returns", "good"],
        ["✓", "report", "good"],
    ]
    assert "! prices: two names dropped: stale prices" in lines  # a user warning, once
    assert [run.status for run in follower.runs] == ["SUCCESS"]
    assert follower.runs[0].total_steps == 3 and follower.failures() == []
    # the console logger at CRITICAL: nothing of Dagster's stream reached stderr
    assert "DEBUG" not in capsys.readouterr().err


def test_a_failed_gate_is_named_in_its_step_line():
    instance = DagsterInstance.ephemeral()
    follower, text, result = _follow(instance, lambda: _in_process(instance, "bad"))
    assert not result.success
    (failure,) = follower.failures()
    assert failure.startswith("returns bad: returns check finite_bounded failed")
    assert "3 returns below -95 %" in failure
    assert any(
        line.startswith("✗ returns") and "3 returns below" in line for line in text.splitlines()
    )
    assert not any(line.startswith("✓ report") for line in text.splitlines())


@pytest.mark.timeout(300)
def test_follows_execute_job_on_a_persistent_instance(tmp_path):
    with DagsterInstance.local_temp(str(tmp_path)) as instance:

        def launch():
            with execute_job(
                reconstructable(toy_job),
                instance,
                tags={"dagster/partition": "good"},
                run_config=QUIET,
            ) as result:
                return result.success

        follower, text, ok = _follow(instance, launch)
    assert ok
    assert sorted(line.split()[1] for line in text.splitlines() if line.startswith("✓")) == [
        "prices",
        "report",
        "returns",
    ]
    assert all(step.seconds is not None and step.seconds >= 0 for step in follower.runs[0].steps)
