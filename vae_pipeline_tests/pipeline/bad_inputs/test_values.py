"""Bad values in the price file, each in one cell of its last day (D1): NaN,
inf, non-numeric, non-positive prices and returns at or below -100 % are refused naming
the file, the ticker and the day; a NaN price and an absurd move are cleaned by documented
rules.

One row each, in process (see ``__init__.py``); rows in ``rows.py``.
"""

import pytest

from vae_pipeline_tests.pipeline.bad_inputs.harness import Good, Row, check_in_process
from vae_pipeline_tests.pipeline.bad_inputs.rows import VALUES


@pytest.mark.parametrize("row", VALUES, ids=[r.id for r in VALUES])
def test_bad_input_in_process(row: Row, good: Good, cli_runs, tmp_path, monkeypatch):
    check_in_process(row, good, tmp_path, monkeypatch)
