"""A badly structured price file: duplicate dates or tickers, unsorted rows, a ticker
without data, an empty or missing file, a layout that is neither wide prices nor long
returns.

One row each, in process (see ``__init__.py``); rows in ``rows.py``.
"""

import pytest

from vae_pipeline_tests.pipeline.bad_inputs.harness import Good, Row, check_in_process
from vae_pipeline_tests.pipeline.bad_inputs.rows import STRUCTURE


@pytest.mark.parametrize("row", STRUCTURE, ids=[r.id for r in STRUCTURE])
def test_bad_input_in_process(row: Row, good: Good, cli_runs, tmp_path, monkeypatch):
    check_in_process(row, good, tmp_path, monkeypatch)
