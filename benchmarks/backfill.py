"""``vae backfill`` of 1, 21 and 250 new days, cold, timed per day.

    .venv/bin/python benchmarks/backfill.py --n 60 --days 1,21,250
    python scripts/record_result.py benchmarks/results/backfill.json -- \
        python benchmarks/backfill.py --n 60,500 --days 1,21,250      # the README table

Each case starts from an empty store and a fresh in-memory Dagster instance and runs
``vae_pipeline.pipeline.runner.backfill`` (what ``vae backfill --start A --end B`` runs) for the
``--days`` trading days ending at 2024-06-03, on the synthetic source with the default settings
(W = 504, H = 21, 300 epochs, the default embedding), N = ``--n`` names: the history ingest
(one ranged run), the decision chain of [A-H, B] (one ranged run: the models of every window
trained together; the Adam models as warm-start chains of at most ``VAE_PIPELINE_CHAIN_LENGTH``
days, as many chains as make the range cheapest) and the rest of [A, B] (one ranged run). A year
of daily refits is the 250-day case. Reported: seconds per case and stage, seconds per new day, and the ratio of the
21-day case to the 1-day case (the target: at most 4x). The load average is printed beside
each case: on a busy machine every figure is pessimistic.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

DAY = "2024-06-03"  # a Monday, the last day of every case
TARGETS = {"ratio_21_to_1": 4.0, "year_minutes_60": 5.0, "year_minutes_500": 15.0}


def settings_for(n: int, db_path: Path, days: int):
    """The synthetic default at N names, its history starting where the first day's window
    (and its decision's) needs it."""
    from vae_pipeline.core.calendar import shift_trading_days
    from vae_pipeline.settings import PipelineSettings

    defaults = PipelineSettings(db_path=db_path)
    span = defaults.evaluation.window + defaults.evaluation.horizon + days + 5
    start = shift_trading_days(DAY, -span)
    return PipelineSettings(db_path=db_path, start=f"{start:%Y-%m-%d}", n_names=n, seed=42,
                            device="cpu")  # fmt: skip


def measure(n: int, days: int) -> dict:
    """One cold backfill of ``days`` trading days ending at DAY."""
    from dagster import DagsterInstance
    from rich.console import Console

    from vae_pipeline.cli.progress import RunFollower
    from vae_pipeline.core.calendar import shift_trading_days
    from vae_pipeline.pipeline.definitions import build_definitions
    from vae_pipeline.pipeline.runner import backfill

    first = shift_trading_days(DAY, -(days - 1))
    with tempfile.TemporaryDirectory(prefix="vae_backfill_") as tmp:
        settings = settings_for(n, Path(tmp) / "bench.duckdb", days)
        defs = build_definitions(settings)
        stages: list[dict] = []

        def progress(stage, a, b, count, result):
            if result is None:
                stages.append({"stage": stage, "first": a, "last": b, "days": count,
                               "started": time.perf_counter()})  # fmt: skip
            else:
                stages[-1]["seconds"] = time.perf_counter() - stages[-1].pop("started")

        load_before = os.getloadavg()[0]
        instance = DagsterInstance.ephemeral()
        t0 = time.perf_counter()
        # as ``vae backfill`` runs it: Dagster's console logger at the settings' level (its
        # DEBUG stream, ~20,000 lines a year, is --verbose only) and the step follower polling
        # the instance (its lines to a buffer instead of the terminal)
        with RunFollower(instance, Console(file=io.StringIO())):
            result = backfill(defs, first, DAY, settings, instance=instance, progress=progress,
                              log_level=settings.runtime.log_level)  # fmt: skip
        seconds = time.perf_counter() - t0
    return {
        "n": n, "days": days, "first": f"{first:%Y-%m-%d}", "last": DAY,
        "seconds": seconds, "seconds_per_day": seconds / days, "filled": len(result.filled),
        "refused": result.refused, "runs": len(result.plan.runs), "stages": stages,
        "epochs": settings.model.epochs, "window": settings.evaluation.window,
        "horizon": settings.evaluation.horizon, "embedding": settings.model.embedding,
        "chain_length": settings.model.chain_length,
        "load_before": load_before, "load_after": os.getloadavg()[0],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="60", help="names, comma-separated (e.g. 60,500)")
    parser.add_argument("--days", default="1,21,250", help="new days per case, comma-separated")
    parser.add_argument("--cases", default=None,
                        help="N x days pairs instead of --n / --days, e.g. 60x1,60x21,60x250,500x1")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.cases:
        pairs = [tuple(int(v) for v in c.split("x")) for c in args.cases.split(",")]
    else:
        pairs = [(int(n), int(d)) for n in args.n.split(",") for d in args.days.split(",")]
    cases = []
    for n, days in pairs:
        cases.append(measure(n, days))
        print(f"N={n} {days} days: {cases[-1]['seconds']:.1f} s "
              f"({cases[-1]['seconds_per_day']:.2f} s/day), load {cases[-1]['load_before']:.1f}",
              file=sys.stderr, flush=True)  # fmt: skip  (stdout: the one JSON object)
    by = {(c["n"], c["days"]): c["seconds"] for c in cases}
    summary = {
        f"ratio_21_to_1_n{n}": by[(n, 21)] / by[(n, 1)]
        for n in {c["n"] for c in cases}
        if (n, 1) in by and (n, 21) in by
    }
    summary.update({f"year_minutes_n{n}": by[(n, 250)] / 60.0
                    for n in {c["n"] for c in cases} if (n, 250) in by})  # fmt: skip
    # Where the year was not run: the 1-day case plus 249 x the marginal cost of a new day
    # (the 21-day case's extra seconds over the 1-day case, per extra day): an extrapolation,
    # named as one in the JSON and the README.
    summary.update({
        f"year_minutes_extrapolated_n{n}": (by[(n, 1)] + 249 * (by[(n, 21)] - by[(n, 1)]) / 20) / 60
        for n in {c["n"] for c in cases} if (n, 250) not in by and (n, 1) in by and (n, 21) in by
    })  # fmt: skip
    out = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
           "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "targets": TARGETS,
           "summary": summary, "cases": cases}  # fmt: skip
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
