"""Wall time of one VAE fit, printed beside this machine's float32 matmul throughput.

A script, not a test: speed figures belong next to the machine's own numbers (docs/architecture.md: measuring honestly).

    .venv/bin/python benchmarks/bench_vae.py
    .venv/bin/python benchmarks/bench_vae.py --sizes 500x504 --epochs 100 --device cuda
    .venv/bin/python benchmarks/bench_vae.py --threads 1,2,4

For each N x T it trains the default linear-decoder VAE (full batch, ``--epochs`` epochs) on a
seed-42 synthetic panel and reports the achieved FLOP rate of training as a fraction of the
machine's best-of-3 2048 x 2048 float32 matmul rate (numpy sgemm) measured in the same run.

FLOP estimate: a dense layer with P weights costs ~2 P FLOPs per sample forward and ~4 P
backward (input and weight gradients), so one epoch is ~6 x P x T over the linear layers
(encoder N->h, head h->2k, decoder k->N); activations, the loss and Adam are ignored (they are
O(T x (N + h)) or O(P), far below the matmuls).

Each size is fitted once per torch intra-op thread count in ``--threads`` (default: 1 and
torch's default): the layers are thin (N x 64), so extra threads mostly add synchronisation.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from vae_pipeline.core.covariance import VAECovariance
from vae_pipeline.core.synthetic import generate_panel
from vae_pipeline.core.training import TrainConfig, train_vae


def sgemm_gflops(n: int = 2048, repeats: int = 3) -> float:
    """Best-of-``repeats`` float32 n x n matmul throughput in GFLOP/s (2 n^3 flops)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up (thread pool start, page faults)
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def linear_params(n: int, k: int, hidden: int) -> int:
    """Weights of the linear layers: encoder N x h, head h x 2k, linear decoder k x N."""
    return n * hidden + hidden * 2 * k + k * n


def parse_sizes(text: str) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in part.lower().split("x")) for part in text.split(",")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="500x504,3000x2520", help="comma-separated NxT pairs")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--threads", default=None, help="comma-separated torch thread counts")
    args = parser.parse_args(argv)
    default_threads = torch.get_num_threads()
    threads = sorted({1, default_threads}) if args.threads is None else [
        int(v) for v in args.threads.split(",")
    ]

    gflops = sgemm_gflops()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    print(f"float32 matmul (2048^2 numpy sgemm, best of 3): {gflops:.1f} GFLOP/s")
    header = (f"{'N':>5} {'T':>5} {'epochs':>6} {'device':>6} {'thr':>3} {'fit s':>8} "
              f"{'ms/epoch':>9} {'GFLOP':>8} {'GFLOP/s':>8} {'of sgemm':>8} {'cov s':>7}")
    print(header)
    for n, t in parse_sizes(args.sizes):
        panel = generate_panel(n_days=t, n_names=n, seed=42)
        cfg = TrainConfig(epochs=args.epochs, device=args.device)
        for n_threads in threads:
            torch.set_num_threads(n_threads)
            t0 = time.perf_counter()
            result = train_vae(panel.returns, cfg)
            fit_s = time.perf_counter() - t0  # includes standardising and the device copy
            t1 = time.perf_counter()
            VAECovariance.from_trained(result, panel.returns)  # 2000 MC draws + residual var
            cov_s = time.perf_counter() - t1
            epochs = len(result.history)
            flops = 6.0 * linear_params(n, cfg.latent_dim, cfg.hidden) * t * epochs
            rate = flops / fit_s / 1e9
            print(f"{n:>5} {t:>5} {epochs:>6} {result.device:>6} {n_threads:>3} {fit_s:>8.2f} "
                  f"{1e3 * fit_s / epochs:>9.2f} {flops / 1e9:>8.1f} {rate:>8.1f} "
                  f"{rate / gflops:>8.1%} {cov_s:>7.2f}")
    torch.set_num_threads(default_threads)


if __name__ == "__main__":
    main()
