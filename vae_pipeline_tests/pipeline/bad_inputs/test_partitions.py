"""Bad partitions: a trading day after the data ends, a day before the first
partition.

One row each, in process (see ``__init__.py``); rows in ``rows.py``.
"""

import pytest

from vae_pipeline_tests.pipeline.bad_inputs.harness import Good, Row, check_in_process
from vae_pipeline_tests.pipeline.bad_inputs.rows import PARTITIONS


@pytest.mark.parametrize("row", PARTITIONS, ids=[r.id for r in PARTITIONS])
def test_bad_input_in_process(row: Row, good: Good, cli_runs, tmp_path, monkeypatch):
    check_in_process(row, good, tmp_path, monkeypatch)
