"""Windows and universe size: a window that starts before the data, more latent
factors than names, a halted name and a constant name.

One row each, in process (see ``__init__.py``); rows in ``rows.py``.
"""

import pytest

from vae_pipeline_tests.pipeline.bad_inputs.harness import Good, Row, check_in_process
from vae_pipeline_tests.pipeline.bad_inputs.rows import WINDOWS


@pytest.mark.parametrize("row", WINDOWS, ids=[r.id for r in WINDOWS])
def test_bad_input_in_process(row: Row, good: Good, cli_runs, tmp_path, monkeypatch):
    check_in_process(row, good, tmp_path, monkeypatch)
