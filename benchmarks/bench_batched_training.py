"""Batched training across windows (issue 14): one-window loop vs batched fit, per model kind.

A script, not a test: speed figures belong next to the machine's own numbers (docs/architecture.md: measuring honestly).

    .venv/bin/python benchmarks/bench_batched_training.py            # N = 60 and 500, ~10 min
    .venv/bin/python benchmarks/bench_batched_training.py --quick    # fewer windows and epochs

For each N (W = 504 days, consecutive windows of a seed-42 synthetic panel, the registry's
default epochs) and each model the registry trains, it times the seconds per window of the
one-window loop (``core.refit.fit_model``) and of the ranged fit (``core.refit.fit_model_range``:
the Adam models batched, the EM headline models window by window), checks the ranged fits
equal the one-window ones (weights' max abs difference), measures this machine's float32
matmul rate (a 2048^3 ``torch.matmul``, best of 5) and each batched Adam step's achieved FLOP
rate as a share of it (the step's matrix products counted analytically, :func:`step_flops`,
over a fixed number of epochs with every window training, beside a matmul measured just
before it: the machine's load varies), and the one-day fit's own optimiser noise (the same
fit on the window plus 1e-9 noise) beside the batched-vs-one-window difference. It
extrapolates a 250-day backfill (every model of each day, batched) and writes
``benchmarks/results/batched_training.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from vae_pipeline.core.batched import train_batched
from vae_pipeline.core.covariance import REGISTRY, model_keys, model_names
from vae_pipeline.core.refit import fit_model, fit_model_range, model_config
from vae_pipeline.core.synthetic import generate_panel
from vae_pipeline.core.training import TrainConfig

OUT = Path(__file__).resolve().parent / "results" / "batched_training.json"
W = 504
BACKFILL_DAYS = 250
TARGETS = {"share_500": 0.40, "backfill_500_min": 15.0, "backfill_60_min": 5.0}


def torch_matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best / 1e9


def step_flops(config: TrainConfig, t: int, n: int, n_cond: int) -> float:
    """FLOPs of one window's full-batch step (forward + backward), matrix products only (2 per
    multiply-add): the encoder (the input needs no gradient: forward + weight gradient), the
    head, and the decoder through the batched loss's expansion (``u`` the decoder's last input,
    width m: ``X'U`` forward and its gradient in ``U``, ``U'U``, ``W'W`` / ``W (U'U)``)."""
    k, h, c = config.latent_dim, config.hidden, n_cond
    flops = 0.0
    if config.encoder == "mlp":
        flops += 4.0 * t * (n + c) * h + 6.0 * t * h * 2 * k
    else:
        flops += 4.0 * t * (n + c) * 2 * k
    dec_in = k + c + (k * c if c and config.model_decoder(c) == "conditional_linear" else 0)
    decoder = config.model_decoder(c)
    if decoder == "mlp":
        flops += 6.0 * t * dec_in * h
        m = h
    else:
        m = dec_in
    flops += 4.0 * t * m * n + 6.0 * t * m * m + 6.0 * n * m * m
    return flops


def kept_loss(result) -> float:
    """The loss of the epoch whose weights were kept (the last row for the EM fits)."""
    history = result.history
    row = (
        len(history) - 1 if result.best_epoch is None else min(result.best_epoch, len(history)) - 1
    )
    return float(history["total"].iloc[row])


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), 1e-12)


def max_weight_diff(one, ranged) -> float:
    a, b = one.model.state_dict(), ranged.model.state_dict()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def measure(n: int, windows: int, one_windows: int, rate_epochs: int, matmul: float) -> dict:
    panel = generate_panel(n_days=W + windows, n_names=n, seed=42)
    regime = panel.observables["regime"].to_numpy().astype(int)
    ws = [panel.returns.iloc[i : i + W] for i in range(windows)]
    rs = [regime[i : i + W] for i in range(windows)]
    names = model_names()
    rows = []
    for key in model_keys(list(REGISTRY)):
        config = model_config(TrainConfig(), key)
        regimes = rs if key.kind == "cvae" else [None] * windows
        em = config.fit == "converged" and config.encoder == "linear"
        n_one = one_windows if not em else min(one_windows, 2)
        t0 = time.perf_counter()
        one = [fit_model(key, ws[i], regimes[i], config) for i in range(n_one)]
        one_s = (time.perf_counter() - t0) / n_one
        count = windows if not em else n_one  # an EM range is the one-day fits window by window
        t0 = time.perf_counter()
        ranged = fit_model_range(key, ws[:count], regimes[:count], config)
        ranged_s = (time.perf_counter() - t0) / count
        row = {
            "model": names[key],
            "key": key.label,
            "fit": "em" if em else "adam",
            "one_window_s": one_s,
            "batched_s": ranged_s,
            "speedup": one_s / ranged_s,
            "windows": count,
            "epochs_mean": float(np.mean([len(r.history) for r in ranged])),
            "max_weight_diff": max(
                max_weight_diff(o, r) for o, r in zip(one, ranged[: len(one)], strict=True)
            ),
            "same_stop": all(
                (o.best_epoch, o.stop_reason, len(o.history))
                == (r.best_epoch, r.stop_reason, len(r.history))
                for o, r in zip(one, ranged[: len(one)], strict=True)
            ),
        }
        # The one-day fit's own optimiser noise: the same fits on the windows + 1e-9 noise (1e-7
        # of a daily return); the Adam fits at lr 3e-2 are chaotic, so float rounding alone
        # (batched vs one-window kernels) moves them by as much.
        rng = np.random.default_rng(0)
        floor = 0.0
        for i, o in enumerate(one):
            noisy = ws[i] + rng.standard_normal(ws[i].shape) * 1e-9
            floor = max(
                floor, rel(kept_loss(o), kept_loss(fit_model(key, noisy, regimes[i], config)))
            )
        row |= {
            "kept_loss_rel_diff": max(
                rel(kept_loss(o), kept_loss(r))
                for o, r in zip(one, ranged[: len(one)], strict=True)
            ),
            "noise_floor_kept_loss_rel": floor,
        }
        if not em:  # the batched step's FLOP rate: fixed epochs, every window training
            fixed = replace(config, fit="adam", epochs=rate_epochs)
            n_cond = 2 if key.kind == "cvae" else 0
            conds = rs if n_cond else None
            train_batched(ws, replace(fixed, epochs=2), conds, n_cond or None)  # warm-up
            matmul = torch_matmul_gflops(repeats=3)  # now: the machine's load varies
            t0 = time.perf_counter()
            train_batched(ws, fixed, conds, n_cond or None)
            sec = time.perf_counter() - t0
            gflops = step_flops(config, W, n, n_cond) * windows * rate_epochs / sec / 1e9
            row |= {"step_gflops": gflops, "matmul_gflops": matmul, "matmul_share": gflops / matmul}
        rows.append(row)
        print(
            f"  N={n} {row['model']:<15} {row['fit']:<4} one-window {one_s:7.3f} s/window  "
            f"batched {ranged_s:7.3f} s/window  x{row['speedup']:5.1f}  "
            f"epochs {row['epochs_mean']:6.0f}  max|dw| {row['max_weight_diff']:.1e}  "
            f"kept loss rel diff {row['kept_loss_rel_diff']:.1e} "
            f"(noise floor {row['noise_floor_kept_loss_rel']:.1e})"
            + (
                f"  step {row['step_gflops']:5.1f} GFLOP/s = {row['matmul_share']:.0%}"
                if "step_gflops" in row
                else ""
            ),  # fmt: skip
            flush=True,
        )
    per_day = sum(r["batched_s"] for r in rows)
    return {
        "n": n,
        "window_days": W,
        "windows": windows,
        "models": rows,
        "all_models_s_per_day": per_day,
        "backfill_250_min": per_day * BACKFILL_DAYS / 60.0,
        "one_window_backfill_250_min": sum(r["one_window_s"] for r in rows) * BACKFILL_DAYS / 60,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="60,500")
    parser.add_argument("--windows", type=int, default=16, help="windows batched per model")
    parser.add_argument("--one-windows", type=int, default=2, help="windows of the loop timed")
    parser.add_argument("--rate-epochs", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="4 windows, 1 loop window, 30 epochs")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    if args.quick:
        args.windows, args.one_windows, args.rate_epochs = 4, 1, 30
    matmul = torch_matmul_gflops()
    load = "/".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, load {load}")  # fmt: skip
    print(f"float32 torch.matmul 2048^3 (best of 5): {matmul:.1f} GFLOP/s", flush=True)
    started = time.perf_counter()
    sizes = []
    for n in (int(v) for v in args.sizes.split(",")):
        sizes.append(measure(n, args.windows, args.one_windows, args.rate_epochs, matmul))
        s = sizes[-1]
        print(f"  N={n}: every model of one day {s['all_models_s_per_day']:.2f} s batched; "
              f"250-day backfill ~ {s['backfill_250_min']:.1f} min "
              f"(one-window loop ~ {s['one_window_backfill_250_min']:.1f} min)", flush=True)  # fmt: skip
    targets = {}
    for s in sizes:
        if s["n"] in (60, 500):
            limit = TARGETS[f"backfill_{s['n']}_min"]
            targets[f"backfill_{s['n']}"] = {
                "minutes": s["backfill_250_min"], "target": limit,
                "met": s["backfill_250_min"] <= limit,
            }  # fmt: skip
        if s["n"] == 500:
            ref = next(r for r in s["models"] if r["model"] == "vae_reference")
            targets["vae_share_500"] = {
                "share": ref["matmul_share"], "target": TARGETS["share_500"],
                "met": ref["matmul_share"] >= TARGETS["share_500"],
            }  # fmt: skip
    record = {
        "benchmark": "batched_training",
        "quick": args.quick,
        "machine": {
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_before": load,
            "matmul_gflops": matmul,
            "torch": torch.__version__,
        },
        "sizes": sizes,
        "targets": targets,
        "seconds": time.perf_counter() - started,
    }
    for name, t in targets.items():
        print(f"  target {name}: {t}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=1))
    print(f"wrote {args.out} ({record['seconds']:.0f} s)")
    print(json.dumps(record))  # the last line: run_all.py reads it


if __name__ == "__main__":
    main()
