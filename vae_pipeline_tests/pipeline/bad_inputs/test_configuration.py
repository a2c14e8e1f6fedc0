"""Bad configuration: ``VAE_PIPELINE_*`` values refused when the definitions are
built, and a bad run config refused by the shared training resource.

One row each, in process (see ``__init__.py``); rows in ``rows.py``.
"""

import pytest

from vae_pipeline_tests.pipeline.bad_inputs.harness import Good, Row, check_in_process
from vae_pipeline_tests.pipeline.bad_inputs.rows import CONFIGURATION


@pytest.mark.parametrize("row", CONFIGURATION, ids=[r.id for r in CONFIGURATION])
def test_bad_input_in_process(row: Row, good: Good, cli_runs, tmp_path, monkeypatch):
    check_in_process(row, good, tmp_path, monkeypatch)
