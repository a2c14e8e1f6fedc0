"""Warm-started vs cold daily refits in the walk-forward horse race (seed-42 synthetic panel).

    .venv/bin/python benchmarks/warm_start.py --days 250

The pipeline's daily computation, without Dagster, for ``--days`` consecutive trading days d
ending H days before the end of the seed-42 panel (60 names, 1260 days, W = 504, H = 21), in
two chains over the same days:

- ``cold``: every day the VAE and CVAE are fitted from the seeded initialisation (300 epochs at
  3e-2), and so are their learned-noise variants (``vae_hetero``, ``cvae_hetero``);
- ``warm``: the first day as cold; after it each VAE / CVAE is seeded with the chain's model of
  the day before and refitted ``warm_epochs`` at ``warm_lr``, and the learned-noise variants
  start from the day's fixed-noise fits (``VAE_PIPELINE_WARM_START=1`` in the pipeline).

Each day every estimator of ``covariance_estimates`` (oracle included) becomes its min-variance
weights, scored by realised vol over (d, d + H] (``minvar_scorecard``), and the days roll up as
in the ``horse_race`` asset. Prints one JSON line: per chain the RMS realised vol per estimator
with the paired difference to Ledoit-Wolf and PCA (95 % t-intervals on every H-th day), the
paired warm - cold difference per estimator, and the training seconds per partition.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import pandas as pd
import torch


def _chain_day(window, regimes, oracle, cfg, seed, prev, warm, warm_epochs, warm_lr):
    """One partition's models and decisions; returns (decisions, models, training seconds)."""
    from vae_pipeline.core.refit import (
        CVAE_MODEL,
        VAE_MODEL,
        SiblingWarmStart,
        estimate_decisions,
        fit_models,
    )
    from vae_pipeline.core.training import train_vae
    from vae_pipeline.core.warm_start import previous_state, warm_config

    n_cond = max(int(regimes.max()) + 1, 2)
    t0 = time.perf_counter()
    fits = {}
    # the plain models warm-start from the previous partition's (a pipeline-layer concern: the
    # assets read their own earlier partitions), the learned-noise ones from these in fit_models
    for name, conditions in (("vae", None), ("cvae", regimes)):
        kw = {} if conditions is None else {"conditions": conditions, "n_conditions": n_cond}
        state = None
        if warm and prev is not None:
            state, _ = previous_state(prev[name], window.columns, cfg, n_cond if conditions is not None else 0)
        fit_cfg = warm_config(cfg, warm_epochs, warm_lr) if state is not None else cfg
        fits[name] = train_vae(window, fit_cfg, init_state=state, **kw)
    models = fit_models(window, regimes, cfg, given={VAE_MODEL: fits["vae"], CVAE_MODEL: fits["cvae"]},
                        warm=SiblingWarmStart(warm_epochs, warm_lr) if warm else None)  # fmt: skip
    seconds = time.perf_counter() - t0
    decisions = estimate_decisions(window, models, regimes, k=cfg.latent_dim, oracle=oracle,
                                   seed=seed)  # fmt: skip
    return decisions, fits, seconds


def measure(days: int, n: int, epochs: int, warm_epochs: int, warm_lr: float, threads: int,
            window: int = 504, horizon: int = 21, seed: int = 42) -> dict:  # fmt: skip
    from vae_pipeline.core.horse_race import summarise_scorecards
    from vae_pipeline.core.panel import expected_window
    from vae_pipeline.core.refit import score_decision
    from vae_pipeline.core.synthetic import generate_panel
    from vae_pipeline.core.training import TrainConfig

    torch.set_num_threads(threads)
    panel = generate_panel(seed=seed, n_names=n)
    returns, regime = panel.returns, panel.observables["regime"].astype(int)
    last = len(returns) - 1 - horizon
    decision_days = returns.index[last - days + 1 : last + 1]
    cfg = TrainConfig(epochs=epochs, seed=seed, device="cpu").validate()
    cards: dict[str, list] = {"cold": [], "warm": []}
    seconds: dict[str, list] = {"cold": [], "warm": []}
    prev: dict[str, dict | None] = {"cold": None, "warm": None}
    load_before = os.getloadavg()[0]
    for day in decision_days:
        expected = expected_window(day, window)
        win = returns.loc[expected[0] : expected[-1]].dropna(axis=1, how="any")
        regimes = regime.reindex(win.index).to_numpy(dtype=int)
        oracle = pd.DataFrame(panel.true_covariance(day), returns.columns, returns.columns)
        oracle = oracle.loc[win.columns, win.columns].to_numpy()
        held = returns.loc[(returns.index > day)].iloc[:horizon]
        for chain in ("cold", "warm"):
            decisions, fits, secs = _chain_day(win, regimes, oracle, cfg, seed, prev[chain],
                                          chain == "warm", warm_epochs, warm_lr)  # fmt: skip
            prev[chain] = fits
            seconds[chain].append(secs)
            weights = decisions.frame
            psd, bad = decisions.psd_problems, decisions.weight_problems
            if psd or bad:
                raise RuntimeError(f"{day:%Y-%m-%d} {chain}: {psd + bad}")
            cards[chain].append(score_decision(weights, held).assign(date=day))
    out: dict = {"n": n, "days": days, "first_day": f"{decision_days[0]:%Y-%m-%d}",
                 "last_day": f"{decision_days[-1]:%Y-%m-%d}", "window": window,
                 "horizon": horizon, "epochs": epochs, "warm_epochs": warm_epochs,
                 "warm_lr": warm_lr, "threads": threads, "load_before": load_before}  # fmt: skip
    vols = {}
    for chain in ("cold", "warm"):
        card = pd.concat(cards[chain], ignore_index=True)
        summary = summarise_scorecards(card, horizon=horizon).set_index("estimator")
        out[chain] = {
            name: {"rms_vol_pct": round(100 * r.rms_vol, 4),
                   "vs_ledoit_wolf_pct": [round(100 * v, 4) for v in (r.diff_vs_ledoit_wolf,
                                          r.diff_vs_ledoit_wolf_lo, r.diff_vs_ledoit_wolf_hi)],
                   "vs_pca_pct": [round(100 * v, 4) for v in (r.diff_vs_pca, r.diff_vs_pca_lo,
                                                               r.diff_vs_pca_hi)]}
            for name, r in summary.iterrows()
        }  # fmt: skip
        vols[chain] = card.pivot_table(index="date", columns="estimator", values="realised_vol")
        # the first day of the warm chain is a cold fit: report the seeded days separately
        steady = seconds[chain][1:] or seconds[chain]
        out[f"{chain}_train_seconds_per_partition"] = round(float(np.mean(steady)), 4)
    from vae_pipeline.core.horse_race import _paired_interval

    out["warm_minus_cold_pct"] = {
        name: [round(100 * v, 4) for v in _paired_interval(vols["warm"][name] - vols["cold"][name],
                                                             horizon)]
        for name in vols["cold"].columns
    }  # fmt: skip
    out["load_after"] = os.getloadavg()[0]
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=250, help="consecutive decision days")
    parser.add_argument("--n", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--warm-epochs", type=int, default=None, help="default: WARM_EPOCHS")
    parser.add_argument("--warm-lr", type=float, default=None, help="default: WARM_LR")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: as the experiment runner; speeds both chains)")
    args = parser.parse_args(argv)
    from vae_pipeline.core.warm_start import WARM_EPOCHS, WARM_LR

    print(json.dumps(measure(args.days, args.n, args.epochs, args.warm_epochs or WARM_EPOCHS,
                             args.warm_lr or WARM_LR, args.threads)))  # fmt: skip


if __name__ == "__main__":
    main()
