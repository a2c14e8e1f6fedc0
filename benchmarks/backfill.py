"""A backfill of consecutive daily partitions at N = 60, timed per partition.

    .venv/bin/python benchmarks/backfill.py --partitions 10 --instance sqlite

Materialises the partitioned graph for ``--partitions`` consecutive trading days ending at
2024-06-03, one in-process run per partition in date order (what a backfill does, minus
the run-worker process start of a daemon-launched run: see ``--process-start`` in
``run_all.py``). The raw history and the decision chains of each day's d - H are
materialised first; the decision-only runs are timed too, because a backfill starting at
day A also needs them for A - H ... A - 1. A year is extrapolated as
``250 x full partition + H x decision-only``; the script says so in its output.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from refit import DAY, PARTITIONED, DagsterRefit, bench_settings

YEAR = 250


def measure(n: int, partitions: int, instance: str, epochs: int) -> dict:
    from dagster import DagsterInstance

    from vae_pipeline.core.calendar import shift_trading_days
    from vae_pipeline.runner import DECISION_ASSETS, HISTORY_ASSETS, RANGE_END_TAG, RANGE_START_TAG

    days = [shift_trading_days(DAY, -i) for i in range(partitions - 1, -1, -1)]
    with tempfile.TemporaryDirectory(prefix="vae_backfill_") as tmp:
        tmp = Path(tmp)
        s = bench_settings(n, tmp / "b.duckdb", history=560 + partitions, epochs=epochs)
        runner = DagsterRefit(s, tmp / "home", instance)
        load_before = os.getloadavg()[0]
        before = shift_trading_days(days[0], -1)
        runner._run(HISTORY_ASSETS, instance=DagsterInstance.ephemeral(),
                    tags={RANGE_START_TAG: s.start, RANGE_END_TAG: f"{before:%Y-%m-%d}"})  # fmt: skip
        decision_seconds = []
        for day in days:
            t0 = time.perf_counter()
            runner.run(shift_trading_days(day, -s.horizon), names=DECISION_ASSETS)
            decision_seconds.append(time.perf_counter() - t0)
        full_seconds = []
        for day in days:
            t0 = time.perf_counter()
            runner.run(day, names=PARTITIONED)
            full_seconds.append(time.perf_counter() - t0)
        full, decision = float(np.mean(full_seconds)), float(np.mean(decision_seconds))
        return {
            "n": n, "instance": instance, "partitions": partitions, "epochs": epochs,
            "load_before": load_before, "load_after": os.getloadavg()[0],
            "full_seconds": full_seconds, "decision_seconds": decision_seconds,
            "full_mean": full, "decision_mean": decision,
            "year_minutes_extrapolated": (YEAR * full + s.horizon * decision) / 60.0,
        }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--instance", choices=["memory", "sqlite", "postgres"], default="sqlite")
    args = parser.parse_args(argv)
    print(json.dumps(measure(args.n, args.partitions, args.instance, args.epochs)))


if __name__ == "__main__":
    main()
