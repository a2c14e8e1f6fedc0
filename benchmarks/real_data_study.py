"""The real-data study: the VAE factor model on 471 S&P 500 names, 2015-2020, through the csv source.

The horse race is ``vae study``'s (``vae_pipeline.core.study.run_study`` on the panel
``vae_pipeline.cli.study.load_study_inputs`` reads): ``make study`` runs that command alone and
writes ``benchmarks/results/real_data_study.json``. This script adds the interpretation, anomaly
and silhouette analyses on the same windows' models.

    .venv/bin/python benchmarks/real_data_study.py                    # everything, ~20 min on 2 cores
    .venv/bin/python benchmarks/real_data_study.py --epochs 150 --out /tmp/study.json
    .venv/bin/python benchmarks/real_data_study.py --names 100 --epochs 50   # a quick look

Reads ``../shared/data/real/`` (``--data``) through the pipeline's own csv source (the loader,
the cleaning and the observables of ``vae_pipeline.sources``), then:

1. **min-variance horse race**, walk-forward: every estimator refitted on the trailing
   ``--window`` days every ``--rebalance`` days and held until the next rebalance (no
   look-ahead); realised annualised vol of each min-var portfolio, with a paired circular
   block-bootstrap interval (21-day blocks) of the vol difference against Ledoit-Wolf and PCA.
   Estimators: sample, Ledoit-Wolf, nonlinear shrinkage, PCA(k), factor analysis(k), the VAE
   and its variants (one model per window), the CVAE on the regime label, regime Ledoit-Wolf.
   The oos days are also split by the regime at their decision date.
2. **latent interpretation**: per window, the strongest |corr| of a latent posterior mean with
   the market (French ``mkt_rf``), VIX (level and daily change) and the term spread T10Y2Y
   (level and daily change), beside PCA(k) and factor-analysis(k) scores; mean over windows.
3. **anomaly test**: reconstruction error per stock on the training window vs the depth of its
   later market-residual drawdown, naive (top 20 % vs rest) and as the partial Spearman
   correlation given the trailing residual vol (the confounder), with intervals: (a) one split,
   the first window's model against every later day (bootstrap over stocks); (b) every
   rebalance against its next holding period, mean partial rho with a bootstrap over rebalances.
4. **sector silhouette** of the 2-D embedding of each stock's loadings (PCA map), VAE vs PCA
   vs factor analysis latents, GICS sectors (names without a sector left out).

Prints markdown tables; writes everything as JSON to ``--out``. A script, not a test: it
prints the machine's core count and the wall time beside the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from vae_pipeline.cli.study import load_study_inputs
from vae_pipeline.core.interpretation import baseline_latents
from vae_pipeline.core.refit import embed_stocks, evaluate_flags, interpret_factors, latent_means
from vae_pipeline.core.study import REGIME_COLUMNS, StudyConfig, markdown_table, run_study
from vae_pipeline.sources.files import load_factors

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "real"
TARGETS = {
    "market": "mkt_rf (daily)",
    "volatility": "VIX level",
    "volatility_change": "VIX daily change",
    "macro_slope": "T10Y2Y level",
    "macro_slope_change": "T10Y2Y daily change",
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of the real files")
    p.add_argument("--out", type=Path, default=Path("/tmp/real_data_study.json"))
    p.add_argument("--window", type=int, default=504)
    p.add_argument("--rebalance", type=int, default=21)
    p.add_argument("--latent", type=int, default=4)
    p.add_argument("--beta", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--n-samples", type=int, default=2000, help="Monte-Carlo draws, VAE cov")
    p.add_argument("--n-boot", type=int, default=2000)
    p.add_argument("--names", type=int, default=0, help="random subset of names (0 = all)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--device", default="cpu")
    p.add_argument("--estimators", default="",
                   help="comma-separated registry names to race (default: the experiment's set); "
                        "ledoit_wolf and pca are always added (the bootstrap baselines)")
    p.add_argument("--horse-race-only", action="store_true",
                   help="skip the interpretation, anomaly and silhouette parts")
    return p.parse_args(argv)


def load(data: Path, names: int, seed: int):
    """Cleaned returns, observables (+ raw mkt_rf) and sectors via the csv source."""
    files = {
        "prices": data / "sp500_2015_2020_prices.csv.gz",
        "sectors": data / "sp500_sectors.csv",
        "factors": data / "ff5_mom_daily.csv",
        "macro": data / "vix_termspread_daily.csv",
    }
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        sys.exit(f"real data not found ({', '.join(missing)}): nothing to study")
    inputs = load_study_inputs(**files, names=names, seed=seed)
    obs = inputs.observables
    factors, _ = load_factors(files["factors"])
    obs["mkt_rf"] = factors["mkt_rf"].reindex(obs.index)
    return inputs.returns, obs, inputs.sectors, inputs.info


class Models:
    """Every window's headline-model fits of the study (``vae`` = the plain VAE per decision)."""

    def __init__(self, refit):
        self.vae = {decision: fitted.vae for decision, fitted in refit.fitted.items()}


def interpretation(returns, obs, args, models: Models):
    observables = pd.DataFrame(
        {"market": obs["mkt_rf"], "volatility": obs["volatility"], "macro_slope": obs["macro_slope"]}
    )
    per = {m: [] for m in ("vae", "pca", "factor_analysis")}
    for decision, result in models.vae.items():
        end = returns.index.get_loc(decision) + 1
        train = returns.iloc[end - args.window : end]
        # the core interpretation stage: the VAE's best |corr| per target, PCA / FA beside it
        summary = interpret_factors(result, train, observables, seed=args.seed).summary
        best = {"vae": summary.best_abs_corr, **summary.baseline_best_abs_corr}
        for method, corr in best.items():
            per[method].append({t: corr[t] for t in TARGETS if t in corr})
    out = {}
    for method, rows in per.items():
        frame = pd.DataFrame(rows)
        out[method] = {
            t: {"mean": float(frame[t].mean()), "min": float(frame[t].min()), "max": float(frame[t].max())}
            for t in frame.columns
        }
    return out


def anomaly(returns, obs, args, models: Models):
    market = obs["market"]
    decisions = list(models.vae)

    def window(decision):
        end = returns.index.get_loc(decision) + 1
        return returns.iloc[end - args.window : end], end

    # (a) one split: the first window's model, every later day (long enough for a beta of
    # its own: the residual beta is fitted on the later days alone).
    first = decisions[0]
    train, end = window(first)
    later = returns.iloc[end:]
    split = evaluate_flags(
        models.vae[first], train, later, market, seed=args.seed, beta_days="held"
    ).test
    # (b) every rebalance against its own holding period (beta over window + holding days,
    # for the held residuals and the trailing vol alike).
    rhos, naive = [], []
    for decision in decisions:
        train, end = window(decision)
        held = returns.iloc[end : end + args.rebalance]
        if len(held) < 5:
            continue
        test = evaluate_flags(
            models.vae[decision], train, held, market, seed=args.seed,
            beta_days="span", vol_beta_days="span",
        ).test  # fmt: skip
        rhos.append(test.partial_rho_given_idio_vol)
        naive.append(test.high_error_mean_dd - test.low_error_mean_dd)
    rhos = np.asarray(rhos)
    boot = np.random.default_rng(args.seed).choice(rhos, size=(args.n_boot, len(rhos))).mean(axis=1)
    return {
        "single_split": split.model_dump(mode="json") | {"decision": f"{first:%Y-%m-%d}",
                                                          "later_days": len(later)},
        "walk_forward": {
            "n_rebalances": len(rhos),
            "mean_partial_rho": float(rhos.mean()),
            "ci": [float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))],
            "share_positive": float((rhos > 0).mean()),
            "mean_dd_gap_high_minus_low": float(np.mean(naive)),
        },
    }


def silhouettes(returns, sectors, args, models: Models):
    known = sectors[sectors != "Unknown"].reindex(returns.columns).dropna()
    cols = list(known.index)
    per = {m: [] for m in ("vae", "pca", "factor_analysis")}
    for decision, result in models.vae.items():
        end = returns.index.get_loc(decision) + 1
        train = returns.iloc[end - args.window : end]
        lat = {
            "vae": latent_means(result, train),  # over every name: the model's inputs
            "pca": baseline_latents(train, args.latent, "pca", seed=args.seed),
            "factor_analysis": baseline_latents(train, args.latent, "factor_analysis", seed=args.seed),
        }
        for method, z in lat.items():
            per[method].append(embed_stocks(z, train[cols], known, method="pca",
                                            seed=args.seed).silhouette)
    return {
        m: {"mean": float(np.mean(v)), "min": float(np.min(v)), "max": float(np.max(v)),
            "last_window": float(v[-1])}
        for m, v in per.items()
    } | {"n_names": len(cols), "n_sectors": int(known.nunique())}


def fmt_ci(ci) -> str:
    if ci is None:
        return "-"
    d, lo, hi = ci
    mark = " *" if hi < 0 or lo > 0 else ""
    return f"{100 * d:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]{mark}"


def report(res: dict) -> str:
    lines = [
        f"Real-data study: {res['n_names']} names, {res['first_day']}..{res['last_day']}, "
        f"W={res['args']['window']}, rebalance {res['args']['rebalance']}, "
        f"{res['n_rebalances']} rebalances ({res['oos_days']} oos days), k={res['args']['latent']}, "
        f"{res['args']['epochs']} epochs, seed {res['args']['seed']}",
        "",
        markdown_table(res),
    ]
    lines += ["", "(* = the 95 % paired block-bootstrap interval excludes 0; negative = lower vol.)", ""]
    if res["per_regime"]:
        first = next(iter(res["per_regime"].values()))
        names = [n for n in REGIME_COLUMNS if n in first["vol"]]
        lines += ["| regime at decision | days | " + " | ".join(names) + " |",
                  "|---|---:|" + "---:|" * len(names)]
        for label, r in res["per_regime"].items():
            lines.append(f"| {label} | {r['n_days']} | "
                         + " | ".join(f"{100 * r['vol'][n]:.2f}%" for n in names) + " |")
            lines.append("| ... vs Ledoit-Wolf (pp, 95% CI) | | - | "
                         + " | ".join(fmt_ci(r["vs_ledoit_wolf"][n]) for n in names[1:]) + " |")
        lines.append("")
    if "interpretation" not in res:
        return "\n".join(lines)
    lines += ["| strongest latent abs(corr) with | VAE | PCA | factor analysis |", "|---|---:|---:|---:|"]
    for t, label in TARGETS.items():
        cells = [res["interpretation"][m].get(t) for m in ("vae", "pca", "factor_analysis")]
        lines.append(f"| {label} | " + " | ".join(
            f"{c['mean']:.2f} ({c['min']:.2f}-{c['max']:.2f})" if c else "-" for c in cells) + " |")
    lines += ["", "(mean over the walk-forward windows, min-max in brackets)", ""]
    a = res["anomaly"]
    s, w = a["single_split"], a["walk_forward"]
    lines += [
        "| anomaly test | value |", "|---|---|",
        f"| single split ({s['decision']}, {s['later_days']} later days): mean later residual "
        f"drawdown, top-20% error vs rest | {100 * s['high_error_mean_dd']:.1f}% vs "
        f"{100 * s['low_error_mean_dd']:.1f}% |",
        f"| single split: partial Spearman(error, drawdown depth given residual vol) | "
        f"{s['partial_rho_given_idio_vol']:+.3f} [{s['partial_rho_ci'][0]:+.3f}, "
        f"{s['partial_rho_ci'][1]:+.3f}] |",
        f"| walk-forward ({w['n_rebalances']} rebalances, 21-day holds): mean partial Spearman | "
        f"{w['mean_partial_rho']:+.3f} [{w['ci'][0]:+.3f}, {w['ci'][1]:+.3f}] "
        f"({100 * w['share_positive']:.0f}% of rebalances > 0) |",
        "",
    ]
    sil = res["silhouette"]
    lines += [
        f"| sector silhouette of the loadings map ({sil['n_names']} names, {sil['n_sectors']} "
        "GICS sectors) | VAE | PCA | factor analysis |",
        "|---|---:|---:|---:|",
        "| mean over windows (min-max) | " + " | ".join(
            f"{sil[m]['mean']:+.3f} ({sil[m]['min']:+.3f}..{sil[m]['max']:+.3f})"
            for m in ("vae", "pca", "factor_analysis")) + " |",
        "| last window | " + " | ".join(f"{sil[m]['last_window']:+.3f}"
                                         for m in ("vae", "pca", "factor_analysis")) + " |",
    ]
    return "\n".join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    t0 = time.perf_counter()
    returns, obs, sectors, info = load(args.data, args.names, args.seed)
    estimators = None
    if args.estimators:
        estimators = tuple(n.strip() for n in args.estimators.split(",") if n.strip())
    config = StudyConfig(window=args.window, rebalance=args.rebalance, latent=args.latent,
                         beta=args.beta, epochs=args.epochs, n_samples=args.n_samples,
                         n_boot=args.n_boot, seed=args.seed, device=args.device,
                         estimators=estimators, regime=True)  # fmt: skip
    print(f"{returns.shape[1]} names x {len(returns)} days; torch threads {torch.get_num_threads()}, "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}", file=sys.stderr)

    def progress(step, n, info):
        print(f"  rebalance {step}/{n} ({info['decision']}), {info['seconds']:.0f} s",
              file=sys.stderr, flush=True)

    study = run_study(returns, obs, config, progress=progress, keep=not args.horse_race_only)
    res = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
           **study.result, "data": info}  # fmt: skip
    if not args.horse_race_only:
        models = Models(study.models)
        res["interpretation"] = interpretation(returns, obs, args, models)
        res["anomaly"] = anomaly(returns, obs, args, models)
        res["silhouette"] = silhouettes(returns, sectors, args, models)
    res["seconds"] = time.perf_counter() - t0
    print(report(res))
    if res["latents_chosen"]:
        print(f"\nheadline vae latents per window: {res['latents_chosen']}")
    print(f"\n{res['seconds']:.0f} s in all ({res['fit_seconds']:.0f} s training {res['n_fits']} "
          f"models) on {os.cpu_count()} cores; JSON: {args.out}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    return res


if __name__ == "__main__":
    main()
