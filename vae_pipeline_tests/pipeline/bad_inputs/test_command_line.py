"""A few rows again as real subprocesses: ``dagster asset materialize`` and ``vae`` (started
together by ``cli_runs`` in ``conftest.py``); rows in ``rows.py``."""

import pytest

from vae_pipeline_tests.pipeline.bad_inputs.harness import (
    assert_earlier_partitions_untouched,
    assert_nothing_downstream,
)
from vae_pipeline_tests.pipeline.bad_inputs.rows import BY_ID, CLI_IDS, CLI_ROWS


@pytest.mark.parametrize(("tool", "row_id", "code", "needles"), CLI_ROWS, ids=CLI_IDS)
def test_bad_input_through_the_command_line(tool, row_id, code, needles, good, cli_runs):
    folder, future = cli_runs[f"{tool}-{row_id}"]
    done = future.result()
    output = done.stdout + done.stderr
    row = BY_ID[row_id]
    assert done.returncode != 0, output[-3000:]
    if code is not None:
        assert done.returncode == code, output[-3000:]
    for needle in needles or row.needles:
        assert needle in output, f"{needle!r} not in:\n{output[-3000:]}"
    if tool == "vae":
        assert "Traceback" not in done.stderr.split("Error:")[-1]  # the last word is one line
    db = folder / "db.duckdb"
    assert_nothing_downstream(row, good, db, None)
    assert_earlier_partitions_untouched(row, good, db)
