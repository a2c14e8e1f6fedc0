"""Wall time of the classical covariance estimators, printed beside this machine's matmul speed.

A script, not a test: speed figures belong next to the machine's own numbers (docs/architecture.md: measuring honestly).

    .venv/bin/python benchmarks/bench_estimators.py
    .venv/bin/python benchmarks/bench_estimators.py --sizes 500x504 --skip factor_analysis:3000

``--sizes`` takes NxT pairs; ``--skip`` takes estimator names, optionally ``name:N`` for one size.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np
from sklearn.covariance import LedoitWolf

from vae_pipeline.core.covariance import make_estimator

ESTIMATORS = ["sample", "ledoit_wolf", "sklearn_ledoit_wolf", "nonlinear_shrinkage", "pca",
              "factor_analysis"]


def sgemm_gflops(n: int = 2048, repeats: int = 3) -> float:
    """Best-of-``repeats`` float32 n x n matmul throughput in GFLOP/s (2 n^3 flops)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up (thread pool start, page faults)
    best = min(_timed(lambda: a @ b) for _ in range(repeats))
    return 2.0 * n**3 / best / 1e9


def _timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def factor_returns(n: int, t: int, seed: int = 42) -> np.ndarray:
    """T x N daily-return-scale panel from a 4-factor model (realistic spectrum for the timings)."""
    rng = np.random.default_rng(seed)
    loadings = rng.normal([1.0, 0.0, 0.0, 0.0], 0.5, (n, 4))
    factors = rng.standard_normal((t, 4)) * np.array([0.01, 0.005, 0.004, 0.003])
    noise = rng.standard_normal((t, n)) * rng.uniform(0.01, 0.02, n)
    return factors @ loadings.T + noise


def fit_fn(name: str, x: np.ndarray) -> Callable[[], object]:
    if name == "sklearn_ledoit_wolf":
        return lambda: LedoitWolf().fit(x)
    return lambda: make_estimator(name).fit(x)


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in text.split(","):
        n, t = part.lower().split("x")
        sizes.append((int(n), int(t)))
    return sizes


def skipped(name: str, n: int, skip: list[str]) -> bool:
    return name in skip or f"{name}:{n}" in skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500x504,3000x2520", help="comma-separated NxT pairs")
    parser.add_argument("--skip", nargs="*", default=[], help="estimator or estimator:N to skip")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    gflops = sgemm_gflops()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"numpy {np.__version__}, load average {load} (other work skews the timings)")
    print(f"float32 matmul (2048^3, best of 3): {gflops:,.0f} GFLOP/s\n")

    rows = []
    for n, t in parse_sizes(args.sizes):
        x = factor_returns(n, t, args.seed)
        times: dict[str, float] = {}
        for name in ESTIMATORS:
            if skipped(name, n, args.skip):
                continue
            fn = fit_fn(name, x)
            sec = _timed(fn)
            if sec < 1.0:  # fast fits: best of 3, so ms-level noise does not dominate the ratio
                sec = min(sec, _timed(fn), _timed(fn))
            times[name] = sec
        for name, sec in times.items():
            note = ""
            if name == "ledoit_wolf" and "sklearn_ledoit_wolf" in times:
                note = f"sklearn / ours = {times['sklearn_ledoit_wolf'] / sec:.1f}x"
            rows.append((f"N={n}, T={t}", name, f"{sec:.3f}", note))
        for name in ESTIMATORS:
            if name not in times:
                rows.append((f"N={n}, T={t}", name, "skipped", ""))
    _print_table(rows)


def _print_table(rows: list[tuple[str, str, str, str]]) -> None:
    header = ("size", "estimator", "seconds", "note")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:  # plain-text fallback
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
        for r in [header, *rows]:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
        return
    table = Table(*header)
    for r in rows:
        table.add_row(*r)
    Console().print(table)


if __name__ == "__main__":
    main()
