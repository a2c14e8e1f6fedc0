"""Fit time of one headline VAE ("vae": latents by held-out ELBO, EM to convergence, closed-form
covariance) at N = 500, W = 504, beside sklearn FactorAnalysis(k) on the same window.

    .venv/bin/python benchmarks/bench_headline_vae.py [--n 500] [--t 504] [--threads 2]

A synthetic 10-factor window with a dominant market factor (no data needed). The target is
under 10 s on 2 cores.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.decomposition import FactorAnalysis

from vae_pipeline.core.covariance import VAEClosedFormCovariance


def window(t: int, n: int, k: int = 10, seed: int = 42) -> np.ndarray:
    rng = np.random.default_rng(seed)
    loadings = rng.normal(0.0, 0.5, (n, k))
    loadings[:, 0] = rng.normal(1.0, 0.3, n)
    return (rng.standard_normal((t, k)) * 0.01) @ loadings.T + rng.standard_normal((t, n)) * 0.015


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=500)
    p.add_argument("--t", type=int, default=504)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    x = window(args.t, args.n)
    t0 = time.perf_counter()
    est = VAEClosedFormCovariance().fit(x)
    vae_s = time.perf_counter() - t0
    k = est.result_.config.latent_dim
    t0 = time.perf_counter()
    FactorAnalysis(n_components=k, random_state=42).fit(x)
    fa_s = time.perf_counter() - t0
    print(f"N={args.n} W={args.t}: headline vae fit {vae_s:.2f} s (k={k}, active "
          f"{est.active_latents_}, stop {est.result_.stop_reason}); sklearn FactorAnalysis({k}) "
          f"{fa_s:.2f} s")


if __name__ == "__main__":
    main()
