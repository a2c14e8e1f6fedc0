"""Does a scale-free anomaly score say something beyond idiosyncratic volatility?

    PYTHONPATH=$PWD .venv/bin/python benchmarks/anomaly_score.py                  # real + synthetic
    PYTHONPATH=$PWD .venv/bin/python benchmarks/anomaly_score.py --every 3        # every 3rd rebalance
    PYTHONPATH=$PWD .venv/bin/python benchmarks/anomaly_score.py --panel synthetic

Three per-stock scores of the headline ``vae`` model (learned per-stock noise ``psi``), each
from the decision window alone, tested the same way (the partial Spearman correlation with the
later market-residual drawdown given the trailing residual vol, ``core.anomaly.anomaly_test``):

- ``recon_error``: mean squared reconstruction error over the window (standardised units; the
  existing score);
- ``surprise``: mean of ``residual^2 / psi_i`` over the window's last 21 days (the error in
  units of each stock's own learned noise; ``core.anomaly.standardised_surprise``);
- ``error_change``: ``log`` of the last 21 days' mean squared residual over the earlier days'
  (the change against the stock's own trailing level; ``core.anomaly.error_change``).

Both new scores were fixed before any result was seen (21 days = one month = the pipeline's
holding horizon; no other value tried). Two designs per panel, as in the real-data study:
(a) one split: the first window's model against every later day (beta on the later days,
bootstrap interval over stocks); (b) walk-forward: every ``--every``-th rebalance against its
next ``--rebalance`` days (beta over window + held days, for the held residuals and the trailing
vol alike), mean partial rho with a bootstrap interval over rebalances.

The real panel is ``../shared/data/real/sp500_2015_2020_prices.csv.gz`` through the pipeline's
csv source; it is skipped (with a note in the JSON) when absent. The synthetic panel is
``generate_panel(seed=42)`` (``vae train``'s default), where the planted flags also give
Spearman(score, planted). Writes ``--out`` (default ``benchmarks/results/anomaly_score.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from vae_pipeline.core.anomaly import (
    anomaly_test,
    error_change,
    market_residual_returns,
    reconstruction_error,
    standardised_surprise,
)
from vae_pipeline.core.covariance import REGISTRY
from vae_pipeline.core.refit import WindowRefit
from vae_pipeline.core.refit.anomalies import noise_variances, standardised_residuals
from vae_pipeline.core.training import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PRICES = ROOT.parent / "shared" / "data" / "real" / "sp500_2015_2020_prices.csv.gz"
SCORES = ("recon_error", "surprise", "error_change")
T0 = time.perf_counter()


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prices", type=Path, default=DEFAULT_PRICES)
    p.add_argument("--panel", choices=("both", "real", "synthetic"), default="both")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "anomaly_score.json")
    p.add_argument("--window", type=int, default=504, help="real panel's window (the study's)")
    p.add_argument("--synthetic-window", type=int, default=252)
    p.add_argument("--rebalance", type=int, default=21)
    p.add_argument("--every", type=int, default=1, help="test every n-th rebalance")
    p.add_argument("--recent", type=int, default=21, help="days of the surprise / change")
    p.add_argument("--latent", type=int, default=4)
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--seed", type=int, default=42)
    return p.parse_args(argv)


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - T0:6.0f} s] {msg}", file=sys.stderr, flush=True)


def scores(model, window: pd.DataFrame, recent: int) -> dict[str, pd.Series]:
    resid = standardised_residuals(model, window)
    return {
        "recon_error": reconstruction_error(resid, np.zeros_like(resid.to_numpy())),
        "surprise": standardised_surprise(resid, noise_variances(model, resid), recent),
        "error_change": error_change(resid, recent),
    }


def tests(model, window, held, market, recent, seed, n_boot, planted, design) -> dict:
    """Every score's anomaly test; ``design`` "held" (one split) or "span" (walk-forward), the
    residual betas as ``evaluate_flags`` fits them."""
    if design == "held":
        resid = market_residual_returns(held, market.reindex(held.index))
        vol = market_residual_returns(window, market.reindex(window.index)).std(ddof=1)
    else:
        span = pd.concat([window, held])
        span_resid = market_residual_returns(span, market.reindex(span.index))
        resid, vol = span_resid.loc[held.index], span_resid.loc[window.index].std(ddof=1)
    return {
        name: anomaly_test(s, resid, vol, planted=planted, seed=seed, n_boot=n_boot).model_dump(
            mode="json", exclude_none=True
        )
        for name, s in scores(model, window, recent).items()
    }


def study(returns: pd.DataFrame, market: pd.Series, window: int, args, planted=None) -> dict:
    cfg = TrainConfig(latent_dim=args.latent, seed=args.seed).validate()
    refit = WindowRefit(config=cfg, k=args.latent, names=("vae",), seed=args.seed)
    key = REGISTRY["vae"].model_key
    ends = list(range(window, len(returns) - 5 + 1, args.rebalance))[:: args.every]
    out: dict = {"n_names": returns.shape[1], "n_days": len(returns), "window": window}
    rows = []
    for i, end in enumerate(ends):
        train = returns.iloc[end - window : end]
        model = refit.models(train, names=("vae",))[key]
        if i == 0:  # (a) one split: the first window's model against every later day
            later = returns.iloc[end:]
            out["single_split"] = {
                "decision": f"{train.index[-1]:%Y-%m-%d}",
                "later_days": len(later),
                "k": model.config.latent_dim,
                **tests(model, train, later, market, args.recent, args.seed, args.n_boot,
                        planted, "held"),
            }  # fmt: skip
        held = returns.iloc[end : end + args.rebalance]
        t = tests(model, train, held, market, args.recent, args.seed, 200, planted, "span")
        rows.append({name: t[name]["partial_rho_given_idio_vol"] for name in SCORES})
        log(f"rebalance {i + 1}/{len(ends)} {train.index[-1]:%Y-%m-%d} k={model.config.latent_dim} "
            + " ".join(f"{n}={rows[-1][n]:+.3f}" for n in SCORES))  # fmt: skip
    frame = pd.DataFrame(rows)
    rng = np.random.default_rng(args.seed)
    idx = rng.integers(0, len(frame), size=(args.n_boot, len(frame)))
    wf = {"n_rebalances": len(frame), "every": args.every}
    for name in SCORES:
        r = frame[name].to_numpy()
        boot = r[idx].mean(axis=1)
        wf[name] = {
            "mean_partial_rho": float(r.mean()),
            "ci": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
            "share_positive": float((r > 0).mean()),
        }
    out["walk_forward"] = wf
    out["fit_seconds"] = round(refit.seconds, 1)
    return out


def real(args) -> dict:
    if not args.prices.exists():
        log(f"real prices not found at {args.prices}: skipped")
        return {"skipped": f"{args.prices} not found"}
    from vae_pipeline.settings import PipelineSettings
    from vae_pipeline.sources import make_source

    source = make_source(PipelineSettings(source="csv", start="2015-01-05", prices_path=args.prices))
    panel = source.panel
    returns = panel.returns.dropna(axis=1, how="any")
    market = panel.observables.set_index("date")["market"]
    log(f"real panel: {returns.shape[1]} names x {len(returns)} days")
    return study(returns, market, args.window, args)


def synthetic(args) -> dict:
    from vae_pipeline.core.synthetic import generate_panel

    panel = generate_panel(seed=args.seed)
    log(f"synthetic panel: {panel.returns.shape[1]} names x {len(panel.returns)} days")
    return study(panel.returns, panel.observables["market"], args.synthetic_window, args,
                 planted=panel.anomaly.astype(bool))  # fmt: skip


def main(argv=None) -> None:
    args = parse_args(argv)
    res: dict = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                 "cores": os.cpu_count()}  # fmt: skip
    if args.panel in ("both", "synthetic"):
        res["synthetic"] = synthetic(args)
    if args.panel in ("both", "real"):
        res["real"] = real(args)
    res["seconds"] = round(time.perf_counter() - T0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
