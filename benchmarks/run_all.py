"""Every scale and speed figure of issue 6 in one table, each beside its baseline.

    make bench                                  # the full table (~20-30 min on 2 cores)
    .venv/bin/python benchmarks/run_all.py --quick       # N = 60 and 500 only
    .venv/bin/python benchmarks/run_all.py --sizes 60,500,1000,3000 --instances sqlite,memory

Speed figures are ratios measured in the same run (docs/architecture.md: measuring honestly): VAE training against this
machine's float32 matmul, each estimator against its scikit-learn reference, the Dagster
materialisation against the same computation called directly. The load average is printed
beside every section: on a busy machine every figure is pessimistic. Refits and backfills
run in their own processes (``refit.py``, ``backfill.py``) so peak memory is per case.
With ``DAGSTER_PG_*`` set (see deploy/README.md), ``--instances postgres`` adds PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_estimators import factor_returns, sgemm_gflops  # noqa: E402

import vae_pipeline  # noqa: E402,F401  (sets OMP_WAIT_POLICY before torch loads)

TARGETS = {
    "refit_500_s": 10.0,
    "refit_3000_s": 90.0,
    "refit_3000_bytes": 8 * 1024**3,
    "train_share": 0.40,
    "ledoit_wolf_3000_s": 1.0,
    "overhead_500": 0.25,
}


def load() -> str:
    return "load " + "/".join(f"{x:.2f}" for x in os.getloadavg())


def best_of(fn, repeats: int = 3) -> float:
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def torch_sgemm_gflops(n: int = 2048, repeats: int = 5) -> float:
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    return 2.0 * n**3 / best_of(lambda: a @ b, repeats) / 1e9


class Table:
    """Rows of (section, case, measured, baseline, ratio, target, verdict)."""

    header = ("section", "case", "measured", "baseline", "ratio", "target", "met")

    def __init__(self) -> None:
        self.rows: list[tuple[str, ...]] = []

    def add(self, section, case, measured, baseline="", ratio="", target="", met=None):
        verdict = "" if met is None else ("yes" if met else "NO")
        self.rows.append((section, case, measured, baseline, ratio, target, verdict))
        print("  " + " | ".join(str(c) for c in self.rows[-1]), flush=True)

    def print(self) -> None:
        widths = [max(len(str(r[i])) for r in [self.header, *self.rows]) for i in range(7)]
        line = "  ".join("-" * w for w in widths)
        print(line)
        for r in [self.header, *self.rows]:
            print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
            if r is self.header:
                print(line)
        print(line)


# -- sections --------------------------------------------------------------------------
def estimators(table: Table, n: int, t: int) -> None:
    from sklearn.covariance import EmpiricalCovariance, LedoitWolf
    from sklearn.decomposition import PCA, FactorAnalysis

    from vae_pipeline.core.covariance import make_estimator

    print(f"[estimators] N={n} T={t}, best of 3, {load()}", flush=True)
    x = factor_returns(n, t)
    refs = {
        # store_precision=False: the same output as ours (the default also inverts the matrix)
        "sample": ("EmpiricalCovariance", lambda: EmpiricalCovariance(store_precision=False).fit(x)),
        "ledoit_wolf": ("LedoitWolf", lambda: LedoitWolf(store_precision=False).fit(x)),
        "nonlinear_shrinkage": (None, None),
        "pca": ("PCA(4).get_covariance", lambda: PCA(4).fit(x).get_covariance()),
        "factor_analysis": ("FactorAnalysis(4)", lambda: FactorAnalysis(4).fit(x).get_covariance()),
    }
    for name, (ref_name, ref) in refs.items():
        params = {"n_components": 4} if name in ("pca", "factor_analysis") else {}
        ours = best_of(lambda: make_estimator(name, **params).fit(x))  # noqa: B023
        if ref is None:
            table.add("estimators", f"{name} N={n} T={t}", f"{ours:.3f} s", "no sklearn ref")
            continue
        theirs = best_of(ref, 1 if name == "ledoit_wolf" and n >= 2000 else 3)
        target, met = "", None
        if name == "ledoit_wolf":
            target, met = f"<= {TARGETS['ledoit_wolf_3000_s']:.0f} s", ours <= 1.0
        table.add("estimators", f"{name} N={n} T={t}", f"{ours:.3f} s",
                  f"{ref_name} {theirs:.3f} s", f"{theirs / ours:.1f}x faster", target, met)  # fmt: skip


def executed_flops(n: int, t: int, k: int = 4, h: int = 64, epochs: int = 300) -> float:
    """FLOPs the training computes: encoder N->h forward + weight gradient (the input needs
    no gradient), head h->2k and decoder k->N forward + both gradients (2 + 4 per weight)."""
    return (4.0 * n * h + 6.0 * h * 2 * k + 6.0 * k * n) * t * epochs


def training(table: Table, sizes: list[int], gflops: float, torch_gflops: float) -> None:
    import torch

    from vae_pipeline.core.synthetic import generate_panel
    from vae_pipeline.core.training import TrainConfig, train_vae

    print(f"[training] W=504, 300 full-batch epochs, {torch.get_num_threads()} threads, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, {load()}", flush=True)  # fmt: skip
    for n in sizes:
        panel = generate_panel(n_days=504, n_names=n, seed=42)
        train_vae(panel.returns, TrainConfig(epochs=20))  # warm-up
        sec = best_of(lambda: train_vae(panel.returns, TrainConfig()), 2)  # noqa: B023
        rate = executed_flops(n, 504) / sec / 1e9
        target, met = ("", None) if n < 500 else (">= 40 %", rate / gflops >= TARGETS["train_share"])
        table.add("training", f"VAE N={n} W=504", f"{sec:.2f} s = {rate:.0f} GFLOP/s",
                  f"sgemm numpy {gflops:.0f} / torch {torch_gflops:.0f} GFLOP/s",
                  f"{rate / gflops:.0%} / {rate / torch_gflops:.0%}", target, met)  # fmt: skip


def subprocess_json(script: str, *args: str, timeout: int = 3600) -> dict:
    cmd = [sys.executable, str(HERE / script), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=HERE.parent)
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
    if out.returncode or not lines:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return json.loads(lines[-1])


def refits(table: Table, sizes: list[int], instances: list[str], raw: list,
           big_instances: list[str] | None = None) -> None:
    bytes_per_name = {}
    for n in sizes:
        chosen = instances if n <= 500 or big_instances is None else big_instances
        repeats = "3" if n <= 500 else "1"
        print(f"[refit] N={n}, best of {repeats}, {load()}", flush=True)
        direct = subprocess_json("refit.py", "--n", str(n), "--mode", "direct", "--repeats", repeats)
        raw.append(direct)
        target = {500: TARGETS["refit_500_s"], 3000: TARGETS["refit_3000_s"]}.get(n)
        table.add("refit", f"direct N={n}", f"{direct['seconds']:.2f} s",
                  f"peak {direct['peak_rss'] / 1e9:.2f} GB",
                  f"load {direct['load_before']:.1f}", f"<= {target:.0f} s" if target else "",
                  direct["seconds"] <= target if target else None)  # fmt: skip
        if n == 3000:
            table.add("refit", "peak memory N=3000 (direct)", f"{direct['peak_rss'] / 1e9:.2f} GB",
                      "", "", "<= 8 GB", direct["peak_rss"] <= TARGETS["refit_3000_bytes"])  # fmt: skip
        for instance in chosen:
            dag = subprocess_json("refit.py", "--n", str(n), "--mode", "dagster", "--repeats",
                                  repeats, "--instance", instance)  # fmt: skip
            raw.append(dag)
            over = dag["seconds"] / direct["seconds"] - 1.0
            target = "<= 25 %" if n == 500 else ""
            table.add("dagster", f"{instance} instance N={n}", f"{dag['seconds']:.2f} s",
                      f"direct {direct['seconds']:.2f} s", f"overhead {over:+.0%}", target,
                      over <= TARGETS["overhead_500"] if n == 500 else None)  # fmt: skip
            if n == 3000:
                table.add("refit", f"peak memory N=3000 ({instance})",
                          f"{dag['peak_rss'] / 1e9:.2f} GB", "", "", "<= 8 GB",
                          dag["peak_rss"] <= TARGETS["refit_3000_bytes"])  # fmt: skip
            if n not in bytes_per_name and "stored_bytes" in dag:
                bytes_per_name[n] = dag["stored_bytes"]
        if n in bytes_per_name:
            b = bytes_per_name[n]
            table.add("storage", f"DuckDB bytes/partition N={n}", f"{b['duckdb'] / 1e6:.2f} MB",
                      f"uncompressed {b['arrow'] / 1e6:.2f} MB",
                      f"{b['duckdb'] / n / 1e3:.1f} kB/name")  # fmt: skip
    big = sorted(k for k in bytes_per_name if k >= 500)
    if len(big) >= 2:
        per = [bytes_per_name[k]["duckdb"] / k for k in big]
        linear = max(per) / min(per) <= 1.5
        table.add("storage", f"bytes/name over N={','.join(map(str, big))}",
                  " / ".join(f"{p / 1e3:.1f} kB" for p in per), "", "",
                  "linear in N", linear)  # fmt: skip


def backfill(table: Table, sizes: list[int], days: list[int], raw: list) -> None:
    """``vae backfill`` of 1, 21, 250 new days, cold (benchmarks/backfill.py)."""
    print(f"[backfill] N={sizes}, {days} new days, {load()}", flush=True)
    out = subprocess_json("backfill.py", "--n", ",".join(map(str, sizes)),
                          "--days", ",".join(map(str, days)))  # fmt: skip
    raw.append(out)
    for case in out["cases"]:
        n, count = case["n"], case["days"]
        target, met = "", None
        if count == 250 and f"year_minutes_{n}" in out["targets"]:
            limit = out["targets"][f"year_minutes_{n}"]
            target, met = f"<= {limit:.0f} min", case["seconds"] / 60 <= limit
        table.add("backfill", f"N={n}: {count} new days", f"{case['seconds']:.1f} s",
                  f"{case['seconds_per_day']:.2f} s/day", f"{case['runs']} runs", target, met)
    for key, ratio in out["summary"].items():
        if key.startswith("ratio_21_to_1"):
            limit = out["targets"]["ratio_21_to_1"]
            table.add("backfill", f"21 days / 1 day ({key.rsplit('_', 1)[-1]})", f"{ratio:.2f}x",
                      "", "", f"<= {limit:.0f}x", ratio <= limit)  # fmt: skip


def batched(table: Table, quick: bool, raw: list) -> None:
    print(f"[batched] training across windows, {load()}", flush=True)
    out = subprocess_json("bench_batched_training.py", *(["--quick"] if quick else []))
    raw.append(out)
    for name, t in out["targets"].items():
        value = f"{t['share']:.0%}" if "share" in t else f"{t['minutes']:.1f} min"
        table.add("batched", name, value, "", "", f"{t['target']}", t["met"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="60,500,1000,3000")
    parser.add_argument("--instances", default="memory,sqlite",
                        help="Dagster instances for the overhead: memory, sqlite, postgres")
    parser.add_argument("--big-instances", default="sqlite",
                        help="instances for N > 500 (each needs its own 10-year history ingest)")
    parser.add_argument("--backfill", default="1,21,250", help="new days per backfill case ('': skip)")
    parser.add_argument("--quick", action="store_true", help="N = 60, 500; backfills of 1 and 21 days")
    parser.add_argument("--skip", nargs="*", default=[],
                        help="sections to skip: estimators training batched refit backfill")
    parser.add_argument("--raw", default=None, help="write the raw JSON records here")
    args = parser.parse_args(argv)
    sizes = [60, 500] if args.quick else [int(v) for v in args.sizes.split(",")]
    instances = [v for v in args.instances.split(",") if v]
    import torch

    gflops, torch_gflops = sgemm_gflops(repeats=5), torch_sgemm_gflops()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, {load()}")  # fmt: skip
    print(f"float32 matmul 2048^3 (best of 5): numpy {gflops:.0f} GFLOP/s, "
          f"torch {torch_gflops:.0f} GFLOP/s", flush=True)
    table, raw = Table(), []
    started = time.perf_counter()
    if "estimators" not in args.skip:
        estimators(table, 3000 if not args.quick else 1000, 2520)
    if "training" not in args.skip:
        training(table, [n for n in sizes if n >= 60], gflops, torch_gflops)
    if "batched" not in args.skip:
        batched(table, args.quick, raw)
    if "refit" not in args.skip:
        refits(table, sizes, instances, raw, [v for v in args.big_instances.split(",") if v])
    if "backfill" not in args.skip and args.backfill:
        days = [1, 21] if args.quick else [int(v) for v in args.backfill.split(",")]
        backfill(table, [n for n in sizes if n in (60, 500)] or [60], days, raw)
    print(f"\nvae_pipeline benchmarks, {time.perf_counter() - started:.0f} s, finished at {load()}")
    table.print()
    if args.raw:
        Path(args.raw).write_text(json.dumps(raw, indent=1))


if __name__ == "__main__":
    main()
