"""The bad-input matrix: one bad input per row, fed through the real entry points.

A good partition (D0) is materialised end to end once from a seed-42 CSV (30 names, W = 20,
H = 5); each row then gets its own copy of that DuckDB file and a copy of the CSV with one
defect, usually in its last day (D1), and runs:

- ``job``: the ``daily_refit`` job for one partition (what the schedule and
  ``dagster asset materialize --select '*' --partition D`` run), in process;
- ``runner``: ``runner.materialise_day`` (what ``vae run`` / ``make run`` run: the raw history,
  the decision date d-H, then the day);
- ``settings``: ``build_definitions()`` reading the ``VAE_PIPELINE_*`` environment (what every
  entry point does first);

and a few rows again as real subprocesses (``dagster asset materialize`` and ``vae``).

A refused row must name the problem (a failed blocking check with its problems, or the
source's error naming the file, the ticker and the date), materialise nothing downstream of
the refusal for the bad partition, and leave every stored row of the earlier partitions
exactly as it was. A few defects are cleaned by documented rules instead of refused (the
README's "Real data" section); their rows assert the documented result and that it is
visible in the ``raw_returns`` metadata.

The matrix, by file: ``harness.py`` (the good partition, a row, running and checking it),
``rows.py`` (every row, by kind), ``conftest.py`` (the good partition and the subprocess rows,
shared by the whole folder), one ``test_*.py`` per kind of row and ``test_command_line.py``
for the subprocess rows.
"""
