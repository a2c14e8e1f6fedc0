"""The bad-input matrix's shared fixtures: the good partition and the subprocess rows, each
built once for the whole folder (``scope="package"``), and the order of its tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

# The harness and the rows hold assertions: rewritten like the tests' (values in failures).
pytest.register_assert_rewrite(
    "vae_pipeline_tests.pipeline.bad_inputs.harness", "vae_pipeline_tests.pipeline.bad_inputs.rows"
)

from dagster import AssetKey, DagsterInstance  # noqa: E402

from vae_pipeline.core.calendar import shift_trading_days  # noqa: E402
from vae_pipeline.pipeline.definitions import build_definitions  # noqa: E402
from vae_pipeline.pipeline.runner import DECISION_ASSETS, materialise_day  # noqa: E402
from vae_pipeline.settings import PipelineSettings  # noqa: E402
from vae_pipeline.sources import make_source  # noqa: E402
from vae_pipeline_tests.pipeline.bad_inputs.harness import (  # noqa: E402
    D0,
    D1,
    ENV,
    REPO,
    Good,
    command,
    good_prices,
    prepare,
)
from vae_pipeline_tests.pipeline.bad_inputs.rows import BY_ID, CLI_IDS, CLI_ROWS  # noqa: E402


def pytest_collection_modifyitems(items):
    """The command-line rows after the in-process rows: ``cli_runs`` starts their subprocesses
    with the first row of the matrix, so they run while the in-process rows do."""
    here = Path(__file__).parent
    slots = [i for i, item in enumerate(items) if here in item.path.parents]
    last = "test_command_line.py"
    ordered = sorted((items[i] for i in slots), key=lambda item: item.path.name == last)
    for i, item in zip(slots, ordered, strict=True):
        items[i] = item


@pytest.fixture(scope="package")
def good(tmp_path_factory) -> Good:
    """D0 materialised end to end (history, decision D0-H, the day) plus the decision chain
    of D1-H, so a row that passes can score D1."""
    folder = tmp_path_factory.mktemp("bad_inputs")
    prices = good_prices()
    csv = folder / "good.csv"
    prices.to_csv(csv, index=False)
    env = {**ENV, "VAE_PIPELINE_PRICES": str(csv), "VAE_PIPELINE_DB": str(folder / "good.duckdb")}
    settings = PipelineSettings.from_env(env)
    defs = build_definitions(settings)
    instance = DagsterInstance.ephemeral()
    assert all(r.success for r in materialise_day(defs, D0, settings, instance=instance))
    decision = f"{shift_trading_days(D1, -settings.evaluation.horizon):%Y-%m-%d}"
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        partition_key=decision,
        instance=instance,
        asset_selection=[AssetKey(a) for a in DECISION_ASSETS],
    )
    assert result.success
    d1 = make_source(settings).returns(D1, D1)
    return Good(folder, prices, csv, settings.storage.db_path, env, defs.resolve_asset_graph(), d1)


@pytest.fixture(scope="package")
def cli_runs(good, tmp_path_factory):
    """Every subprocess row started at once on two workers (they overlap the in-process rows);
    each test waits for its own."""
    pool = ThreadPoolExecutor(max_workers=2)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VAE_PIPELINE_", "DAGSTER_"))}
    futures = {}
    for (tool, row_id, *_), name in zip(CLI_ROWS, CLI_IDS, strict=True):
        folder = tmp_path_factory.mktemp(name)
        (folder / "dagster_home").mkdir()
        shutil.copy(REPO / "dagster.yaml", folder / "dagster_home" / "dagster.yaml")
        env = {**base, **prepare(BY_ID[row_id], good, folder), "PYTHONUNBUFFERED": "1",
               "DAGSTER_HOME": str(folder / "dagster_home")}  # fmt: skip
        futures[name] = (folder, pool.submit(
            subprocess.run, command(tool, BY_ID[row_id]), cwd=REPO, env=env,
            capture_output=True, text=True, timeout=300,
        ))  # fmt: skip
    yield futures
    pool.shutdown(wait=True)
