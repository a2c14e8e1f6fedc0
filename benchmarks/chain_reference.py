"""Warm-start chains for the fixed-epoch reference models: how far from the one-day fit, and
how far the one-day fit is from itself.

    .venv/bin/python benchmarks/chain_reference.py --n 60,500 --windows 17

A ranged run (``vae backfill``) trains each Adam model of consecutive days' windows as warm-start
chains (``core.refit.models.WarmChains``): a chain's first window cold (300 epochs at 3e-2 from
the seeded initialisation, exactly the one-day fit), each later window from the window before's
model, ``--warm-epochs`` at ``--warm-lr``. For each reference model (``vae_reference``,
``vae_hetero``, ``cvae_reference``, ``cvae_hetero``) on ``--windows`` consecutive W = 504 windows
of the seed-42 synthetic panel (N = ``--n``) and, with ``--real``, of the real S&P 500 panel in
``../shared/data/real/`` (read as ``benchmarks/real_data_study.py`` reads it; the last windows
of the panel, including the 2020 crash; skipped when the data is absent) it fits:

- ``cold``: every window cold, seed 42 (what ``vae run`` gives that day);
- ``seed43``: every window cold, seed 43: an equally valid one-day fit. Its distance to ``cold``
  is the one-day fit's own Monte-Carlo / optimiser noise (initialisation and reparameterisation
  draws), the yardstick for the chains;
- ``chained``: one chain over the windows (the first cold).

and reports, over the chained windows (all but the first), the median relative Frobenius
distance of each estimator's covariance to ``cold`` (chained vs seed43), the realised vol of its
min-variance portfolio over the next H = 21 days (median relative difference to ``cold``, both),
the kept training loss (chained and cold, mean) and the training seconds per window. Prints
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

W, H = 504, 21
MODELS = ("vae_reference", "vae_hetero", "cvae_reference", "cvae_hetero")


def measure(label, returns, regime, windows, warm_epochs, warm_lr) -> dict:
    from vae_pipeline.core import batched
    from vae_pipeline.core.covariance import REGISTRY
    from vae_pipeline.core.minvar import minvar_weights
    from vae_pipeline.core.refit import model_config
    from vae_pipeline.core.refit.covariances import estimate_covariances
    from vae_pipeline.core.refit.models import FittedModels, WarmChains, fit_model_range
    from vae_pipeline.core.training import TrainConfig
    from vae_pipeline.core.warm_start import kept_loss

    # one chain over all the windows (a ranged run cuts chains only as long as its batch width
    # requires, up to VAE_PIPELINE_CHAIN_LENGTH; this measures a chain of the whole length)
    batched.MAX_BATCH = 1
    ws = [returns.iloc[i : i + W] for i in range(windows)]
    rs = [regime[i : i + W] for i in range(windows)]
    future = [returns.iloc[i + W : i + W + H].to_numpy() for i in range(windows)]
    out = {"panel": label, "n": returns.shape[1], "windows": windows, "models": []}
    for name in MODELS:
        key = REGISTRY[name].model_key
        regimes = rs if key.kind == "cvae" else [None] * windows
        fits, seconds = {}, {}
        runs = {
            "cold": (TrainConfig(), None),
            "seed43": (TrainConfig(seed=43), None),
            "chained": (TrainConfig(), WarmChains(warm_epochs, warm_lr, length=windows)),
        }
        for run, (base, chains) in runs.items():
            t0 = time.perf_counter()
            fits[run] = fit_model_range(key, ws, regimes, model_config(base, key), chains=chains)
            seconds[run] = (time.perf_counter() - t0) / windows

        dist = {"chained": [], "seed43": []}
        dvol = {"chained": [], "seed43": []}
        for i in range(1, windows):
            labels = rs[i] if key.kind == "cvae" else None
            cond = int(rs[i][-1]) if key.kind == "cvae" else None
            covs = {
                run: estimate_covariances(ws[i], 4, FittedModels({key: fits[run][i]}), labels,
                                          condition=cond, names=[name])[name]  # fmt: skip
                for run in fits
            }
            vols = {run: float(np.std(future[i] @ minvar_weights(c))) for run, c in covs.items()}
            for run in dist:
                gap = np.linalg.norm(covs[run] - covs["cold"]) / np.linalg.norm(covs["cold"])
                dist[run].append(gap)
                dvol[run].append(abs(vols[run] - vols["cold"]) / vols["cold"])
        out["models"].append({
            "model": name,
            "cov_rel_dist_median": {r: float(np.median(v)) for r, v in dist.items()},
            "vol_rel_diff_median": {r: float(np.median(v)) for r, v in dvol.items()},
            "kept_loss_mean": {r: float(np.mean([kept_loss(f) for f in fits[r][1:]]))
                               for r in fits},  # fmt: skip
            "seconds_per_window": seconds,
            "seeds_kept": sum(len(f.history) == 1 or f.best_epoch == 0 for f in fits["chained"]),
        })  # fmt: skip
        print(json.dumps(out["models"][-1]), file=sys.stderr, flush=True)  # stdout: one JSON
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="60,500", help="synthetic universes, comma-separated")
    parser.add_argument("--windows", type=int, default=17, help="consecutive windows (one chain)")
    parser.add_argument("--warm-epochs", type=int, default=100)
    parser.add_argument("--warm-lr", type=float, default=1e-2)
    parser.add_argument("--real", action="store_true", help="also the real panel (if present)")
    parser.add_argument("--real-names", type=int, default=100, help="names of the real panel")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    from vae_pipeline.core.synthetic import generate_panel

    results = []
    for n in [int(v) for v in args.n.split(",") if v]:
        panel = generate_panel(n_days=W + args.windows + H, n_names=n, seed=42)
        regime = panel.observables["regime"].to_numpy().astype(int)
        results.append(measure(f"synthetic N={n}", panel.returns, regime, args.windows,
                               args.warm_epochs, args.warm_lr))  # fmt: skip
    if args.real:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from real_data_study import DEFAULT_DATA, load

        if not (DEFAULT_DATA / "sp500_2015_2020_prices.csv.gz").exists():
            print(f"real data not found in {DEFAULT_DATA}: the real panel is skipped",
                  file=sys.stderr)  # fmt: skip
        else:
            returns, obs, _, _ = load(DEFAULT_DATA, args.real_names, 42)
            span = W + args.windows + H
            returns = returns.iloc[-span:]
            regime = obs["regime"].reindex(returns.index).fillna(0).to_numpy().astype(int)
            results.append(measure(f"S&P 500 N={returns.shape[1]}", returns, regime,
                                   args.windows, args.warm_epochs, args.warm_lr))  # fmt: skip
    print(json.dumps({"benchmark": "chain_reference", "warm_epochs": args.warm_epochs,
                      "warm_lr": args.warm_lr, "results": results}))  # fmt: skip


if __name__ == "__main__":
    main()
