"""ParquetStore under concurrent writers: what Dask workers do when several steps of one run
(or parallel runs of a backfill) write the same table at once."""

import multiprocessing as mp

import numpy as np
import pandas as pd

from vae_pipeline.store import ParquetStore, Span

DAYS = [f"2024-06-{d:02d}" for d in (3, 4, 5, 6, 7, 10, 11, 12)]
ROUNDS = 15


def frame(day: str, version: int) -> pd.DataFrame:
    """20 rows of day ``day``; every value says which write made it."""
    rng = np.random.default_rng(42)
    return pd.DataFrame(
        {
            "date": pd.Timestamp(day),
            "ticker": [f"T{i:02d}" for i in range(20)],
            "value": rng.standard_normal(20) + version,
            "version": version,
        }
    )


def writer(root: str, worker: int) -> None:
    """Rewrites every day ROUNDS times (all workers race on the same partitions), and now and
    then a two-day span with one day only (the other day's file is deleted)."""
    store = ParquetStore(root)
    for r in range(ROUNDS):
        for i, day in enumerate(DAYS):
            store.replace("panel", frame(day, 1000 * worker + r), Span.days(day, day))
            if (i + r + worker) % 5 == 0 and i + 1 < len(DAYS):
                store.replace("panel", frame(day, 1000 * worker + r), Span.days(day, DAYS[i + 1]))
                store.replace("panel", frame(DAYS[i + 1], 1000 * worker + r),
                              Span.days(DAYS[i + 1], DAYS[i + 1]))  # fmt: skip


def reader(root: str, results) -> None:
    """Reads the whole table while the writers run; every partition seen must be one whole
    write (20 rows of one version), never a torn or mixed file."""
    store = ParquetStore(root)
    torn = 0
    for _ in range(60):
        rows = store.read("panel")
        if len(rows):
            per_day = rows.groupby("date")["version"].agg(["nunique", "size"])
            torn += int(((per_day["nunique"] != 1) | (per_day["size"] != 20)).sum())
    results.put(torn)


def test_concurrent_writers_of_one_table_never_tear_a_partition(tmp_path):
    root = str(tmp_path / "lake")
    ctx = mp.get_context("spawn")
    results = ctx.Queue()
    procs = [ctx.Process(target=writer, args=(root, w)) for w in range(1, 4)]
    procs.append(ctx.Process(target=reader, args=(root, results)))
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=240)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]  # no writer or reader raised
    assert results.get(timeout=5) == 0
    final = ParquetStore(root).read("panel")
    assert sorted(final["date"].dt.strftime("%Y-%m-%d").unique()) == DAYS
    per_day = final.groupby("date")["version"].agg(["nunique", "size"])
    assert (per_day["nunique"] == 1).all() and (per_day["size"] == 20).all()
    assert final["version"].mod(1000).eq(ROUNDS - 1).all()  # each day: some writer's last round
    # no staging file is left behind
    assert not [p for p in (tmp_path / "lake" / "panel").iterdir() if p.name.startswith(".")]
