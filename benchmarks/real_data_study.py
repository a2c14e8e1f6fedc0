"""The real-data study: the VAE factor model on 471 S&P 500 names, 2015-2020, through the csv source.

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

from vae_pipeline.core.covariance import REGISTRY
from vae_pipeline.core.interpretation import baseline_latents
from vae_pipeline.core.minvar import annualised_vol, paired_bootstrap, walk_forward_weights
from vae_pipeline.core.refit import (
    WindowRefit,
    embed_stocks,
    evaluate_flags,
    experiment_estimators,
    interpret_factors,
    latent_means,
)
from vae_pipeline.core.training import TrainConfig
from vae_pipeline.settings import PipelineSettings
from vae_pipeline.sources import make_source
from vae_pipeline.sources.files import load_factors

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "real"
BASELINES = ("ledoit_wolf", "pca")
BLOCK = 21
REGIME_COLUMNS = ["ledoit_wolf", "ledoit_wolf_regime", "pca", "vae", "cvae"]
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
        "prices_path": data / "sp500_2015_2020_prices.csv.gz",
        "sectors_path": data / "sp500_sectors.csv",
        "factors_path": data / "ff5_mom_daily.csv",
        "macro_path": data / "vix_termspread_daily.csv",
    }
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        sys.exit(f"real data not found ({', '.join(missing)}): nothing to study")
    source = make_source(PipelineSettings(source="csv", start="2015-01-05", **files))
    panel = source.panel
    returns = panel.returns.dropna(axis=1, how="any")
    if names:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(returns.shape[1], size=min(names, returns.shape[1]), replace=False))
        returns = returns.iloc[:, keep]
    obs = panel.observables.set_index("date")
    factors, _ = load_factors(files["factors_path"])
    obs["mkt_rf"] = factors["mkt_rf"].reindex(obs.index)
    info = {**panel.observables_info, **{f"cleaned_{k}": v for k, v in panel.cleaned.counts().items()}}
    return returns, obs, panel.sectors, info


class Models(WindowRefit):
    """The core refit stages per decision date (the estimators ``vae train --conditional``
    races), keeping every window's models for the later analyses."""

    @property
    def vae(self) -> dict:
        return {decision: fitted.vae for decision, fitted in self.fitted.items()}


def horse_race(returns, obs, args, models: Models):
    regime = obs["regime"].astype(int)
    models.regime_at = lambda decision: int(regime.loc[decision])

    def progress(step, n, decision):
        print(f"  rebalance {step}/{n} ({decision:%Y-%m-%d}), {time.perf_counter() - T0:.0f} s",
              file=sys.stderr, flush=True)

    wf = walk_forward_weights(returns, models, window=args.window, rebalance=args.rebalance,
                              progress=progress)
    daily = wf.daily
    rows = []
    for name in daily.columns:
        row = {"estimator": name, "vol": annualised_vol(daily[name])}
        for base in BASELINES:
            row[f"vs_{base}"] = (
                list(paired_bootstrap(daily[name], daily[base], n_boot=args.n_boot, block=BLOCK,
                                      seed=args.seed))
                if name != base else None
            )
        rows.append(row)
    rows.sort(key=lambda r: r["vol"])
    decisions = pd.DatetimeIndex(wf.decision_dates)
    pos = decisions.searchsorted(daily.index, side="left") - 1
    day_regime = regime.loc[decisions].to_numpy()[pos]
    per_regime = {}
    for code, label in ((0, "expansion"), (1, "contraction")):
        mask = day_regime == code
        if mask.sum() >= 2:
            days = daily.loc[mask]  # that regime's days, concatenated (blocks may straddle gaps)
            per_regime[label] = {
                "n_days": int(mask.sum()),
                "n_rebalances": int((regime.loc[decisions].to_numpy() == code).sum()),
                "vol": {c: annualised_vol(days[c]) for c in daily.columns},
                "vs_ledoit_wolf": {
                    c: list(paired_bootstrap(days[c], days["ledoit_wolf"], n_boot=args.n_boot,
                                             block=BLOCK, seed=args.seed))
                    for c in REGIME_COLUMNS if c != "ledoit_wolf" and c in daily.columns
                },
            }
    return rows, per_regime, wf


def latents_chosen(models: Models) -> dict:
    """The headline VAE's chosen and active latents per window (empty if it was not raced)."""
    key = REGISTRY["vae"].model_key
    out = {}
    for decision, fitted in models.fitted.items():
        if key in fitted:
            res = fitted[key]
            out[f"{decision:%Y-%m-%d}"] = {"k": res.config.latent_dim, "active": res.active_latents,
                                            "stop": res.stop_reason, "seconds": round(res.seconds, 2)}
    if out:
        ks = np.array([v["k"] for v in out.values()])
        out["summary"] = {"k_median": float(np.median(ks)), "k_min": int(ks.min()),
                          "k_max": int(ks.max())}
    return out


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
        "| estimator | realised vol | vs Ledoit-Wolf (pp, 95% CI) | vs PCA (pp, 95% CI) |",
        "|---|---:|---:|---:|",
    ]
    for r in res["horse_race"]:
        lines.append(f"| {r['estimator']} | {100 * r['vol']:.2f}% | {fmt_ci(r['vs_ledoit_wolf'])} "
                     f"| {fmt_ci(r['vs_pca'])} |")
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
    global T0
    args = parse_args(argv)
    T0 = time.perf_counter()
    torch.manual_seed(args.seed)
    returns, obs, sectors, info = load(args.data, args.names, args.seed)
    labels = obs["regime"].astype(int).shift(1).fillna(0).astype(int)  # regime at the previous close
    cfg = TrainConfig(latent_dim=args.latent, beta=args.beta, epochs=args.epochs, seed=args.seed,
                      device=args.device).validate()
    names = experiment_estimators(conditional=True)
    if args.estimators:
        chosen = [n.strip() for n in args.estimators.split(",") if n.strip()]
        names = tuple(dict.fromkeys([*BASELINES, *chosen]))
    models = Models(config=cfg, k=args.latent, names=names,
                    labels=labels, n_samples=args.n_samples, seed=args.seed, keep=True)
    print(f"{returns.shape[1]} names x {len(returns)} days; torch threads {torch.get_num_threads()}, "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}", file=sys.stderr)
    rows, per_regime, wf = horse_race(returns, obs, args, models)
    res = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "n_names": returns.shape[1],
        "first_day": f"{returns.index[0]:%Y-%m-%d}",
        "last_day": f"{returns.index[-1]:%Y-%m-%d}",
        "n_rebalances": len(wf.decision_dates),
        "oos_days": len(wf.daily),
        "data": info,
        "horse_race": rows,
        "per_regime": per_regime,
        "latents_chosen": latents_chosen(models),
        "fit_seconds_vae_cvae": models.seconds,
        "seconds": time.perf_counter() - T0,
        "machine": {"cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "platform": platform.platform()},
    }
    if not args.horse_race_only:
        res["interpretation"] = interpretation(returns, obs, args, models)
        res["anomaly"] = anomaly(returns, obs, args, models)
        res["silhouette"] = silhouettes(returns, sectors, args, models)
    print(report(res))
    if res["latents_chosen"]:
        print(f"\nheadline vae latents per window: {res['latents_chosen']}")
    print(f"\n{res['seconds']:.0f} s in all ({models.seconds:.0f} s training {models.n_fits} "
          f"models) on {os.cpu_count()} cores; JSON: {args.out}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2))
    return res


T0 = time.perf_counter()

if __name__ == "__main__":
    main()
