"""A backfill of consecutive daily partitions at N = 60, timed per partition.

    .venv/bin/python benchmarks/backfill.py --partitions 10 --instance sqlite

Materialises the partitioned graph for ``--partitions`` consecutive trading days ending at
2024-06-03, one in-process run per partition in date order (what a backfill does, minus
the run-worker process start of a daemon-launched run: see ``--process-start`` in
``run_all.py``). The raw history and the decision chains of each day's d - H are
materialised first; the decision-only runs are timed too, because a backfill starting at
day A also needs them for A - H ... A - 1. A year is extrapolated as
``250 x full partition + H x decision-only``; the script says so in its output.

``--warm-start on`` builds the graph with ``VAE_PIPELINE_WARM_START=1``: each day's VAE / CVAE is
seeded with the day before's (``warm_started_from`` in its metadata). The first partition of
each chain (the decision days, the full days) is a cold fit; the means and the year use the
seeded partitions, plus the one cold fit of each chain a year backfill pays too.
``--warm-start both`` runs the cold and the warm backfill alternately, partition by partition.
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


def _seeded(result) -> bool:
    """Whether the run's trained_vae was warm-started (its metadata names a partition)."""
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        if mat.asset_key.to_user_string() == "trained_vae" and "warm_started_from" in mat.metadata:
            return not str(mat.metadata["warm_started_from"].value).startswith("cold")
    return False


def measure(n: int, partitions: int, instance: str, epochs: int,
            modes: tuple[str, ...] = ("cold",)) -> dict:  # fmt: skip
    """The backfill once per mode (``cold``, ``warm``); with several modes their runs alternate
    partition by partition in this process, so load from other users hits each mode alike."""
    from dagster import DagsterInstance

    from vae_pipeline.core.calendar import shift_trading_days
    from vae_pipeline.pipeline.runner import (
        DECISION_ASSETS,
        HISTORY_ASSETS,
        RANGE_END_TAG,
        RANGE_START_TAG,
    )

    days = [shift_trading_days(DAY, -i) for i in range(partitions - 1, -1, -1)]
    with tempfile.TemporaryDirectory(prefix="vae_backfill_") as tmp:
        tmp = Path(tmp)
        runners = {}
        for mode in modes:
            s = bench_settings(n, tmp / f"{mode}.duckdb", history=560 + partitions, epochs=epochs)
            s = s.with_values(warm_start=mode == "warm")
            runners[mode] = DagsterRefit(s, tmp / f"home_{mode}", instance)
            before = shift_trading_days(days[0], -1)
            runners[mode]._run(HISTORY_ASSETS, instance=DagsterInstance.ephemeral(),
                               tags={RANGE_START_TAG: s.data.start,
                                     RANGE_END_TAG: f"{before:%Y-%m-%d}"})  # fmt: skip
        load_before = os.getloadavg()[0]
        seconds = {m: {"decision": [], "full": []} for m in modes}
        seeded = {m: {"decision": [], "full": []} for m in modes}
        for kind, names, shift in (("decision", DECISION_ASSETS, -s.evaluation.horizon),
                                   ("full", PARTITIONED, 0)):  # fmt: skip
            for day in days:
                for mode, runner in runners.items():
                    t0 = time.perf_counter()
                    _, result = runner.run(shift_trading_days(day, shift), names=names)
                    seconds[mode][kind].append(time.perf_counter() - t0)
                    seeded[mode][kind].append(_seeded(result))
        out = {"n": n, "instance": instance, "partitions": partitions, "epochs": epochs,
               "modes": list(modes), "load_before": load_before}  # fmt: skip
        for mode in modes:
            warm = mode == "warm"
            means, first = {}, {}
            for kind, values in seconds[mode].items():
                steady = [v for v, w in zip(values, seeded[mode][kind], strict=True) if w == warm]
                means[kind] = float(np.mean(steady or values))
                # a chain's first partition is cold: a year backfill pays it once per chain too
                first[kind] = values[0] - means[kind] if warm else 0.0
            year = YEAR * means["full"] + s.evaluation.horizon * means["decision"] + sum(first.values())
            out[mode] = {
                "full_seconds": seconds[mode]["full"],
                "decision_seconds": seconds[mode]["decision"],
                "full_seeded": seeded[mode]["full"], "decision_seeded": seeded[mode]["decision"],
                "full_mean": means["full"], "decision_mean": means["decision"],
                "year_minutes_extrapolated": year / 60.0,
                "extrapolation": f"{YEAR} x full_mean + {s.evaluation.horizon} x decision_mean"
                + (" + the cold first partition of each chain" if warm else ""),
            }  # fmt: skip
        out["load_after"] = os.getloadavg()[0]
        if len(modes) == 1:  # the flat layout run_all.py reads
            out.update(out.pop(modes[0]))
        return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--instance", choices=["memory", "sqlite", "postgres"], default="sqlite")
    parser.add_argument("--warm-start", choices=["off", "on", "both"], default="off",
                        help="on: VAE_PIPELINE_WARM_START=1 (each refit seeded with the day "
                        "before's); both: cold and warm backfills alternating, for a fair ratio")
    args = parser.parse_args(argv)
    modes = {"off": ("cold",), "on": ("warm",), "both": ("cold", "warm")}[args.warm_start]
    print(json.dumps(measure(args.n, args.partitions, args.instance, args.epochs, modes)))


if __name__ == "__main__":
    main()
