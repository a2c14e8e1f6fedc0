"""``vae study PRICES``: the walk-forward min-variance horse race on your own price file.

Reads any file the csv source reads (wide prices, long returns; CSV, CSV.gz or Parquet),
cleans it the pipeline's way, and races the covariance estimators (``core.study``): each is
refitted on the trailing ``--window`` days every ``--rebalance`` days; realised vol of every
min-variance portfolio, with paired block-bootstrap intervals against Ledoit-Wolf, nonlinear
shrinkage and PCA. ``--json`` prints one JSON object on stdout; progress goes to stderr; bad
input gives one line and exit code 2.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import typer
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vae_pipeline.cli.app import _fail, app, err, out


@dataclass
class StudyInputs:
    """Cleaned returns (names with a full history), observables by date, sectors, and what
    the observables are (the source's labels and the cleaning counts)."""

    returns: pd.DataFrame
    observables: pd.DataFrame
    sectors: pd.Series | None
    info: dict[str, Any]


def load_study_inputs(
    prices: Path | str,
    sectors: Path | str | None = None,
    factors: Path | str | None = None,
    macro: Path | str | None = None,
    names: int = 0,
    seed: int = 42,
) -> StudyInputs:
    """The csv source's panel of ``prices`` (and the optional files); ``names`` > 0: a random
    subset of that many names (seeded). Raises DataFileError / ValueError on bad files."""
    from vae_pipeline.sources import CsvSource

    for label, path in (("prices", prices), ("sectors", sectors), ("factors", factors),
                        ("macro", macro)):  # fmt: skip
        if path is not None and not Path(path).exists():
            raise FileNotFoundError(f"{label} file {path}: no such file")
    panel = CsvSource(prices, sectors_path=sectors, factors_path=factors, macro_path=macro).panel
    returns = panel.returns.dropna(axis=1, how="any")
    if names:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(returns.shape[1], size=min(names, returns.shape[1]),
                                  replace=False))  # fmt: skip
        returns = returns.iloc[:, keep]
    obs = panel.observables.set_index("date")
    info = {**panel.observables_info,
            **{f"cleaned_{k}": v for k, v in panel.cleaned.counts().items()}}  # fmt: skip
    return StudyInputs(returns, obs, panel.sectors, info)


def _estimators(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(n.strip() for n in text.split(",") if n.strip())


def _print_table(d: dict[str, Any]) -> None:
    from vae_pipeline.core.study import BASELINE_LABELS, BASELINES

    c = d["config"]
    rows = sorted(d["horse_race"], key=lambda r: r["vol"])
    bases = [b for b in BASELINES if any(r.get(f"vs_{b}") is not None for r in rows)]
    t = Table(
        title=f"Min-variance horse race: {d['n_names']} names, {d['first_day']}..{d['last_day']}, "
        f"W={c['window']}, H={c['rebalance']}, {d['n_rebalances']} rebalances "
        f"({d['oos_days']} oos days), k={c['latent']}",
        box=box.SIMPLE_HEAD,
        caption="vol in % a year; vs: difference in vol points [95 % paired block bootstrap], "
        "* = interval excludes 0",
    )
    t.add_column("estimator", no_wrap=True)
    t.add_column("vol %", justify="right", no_wrap=True)
    for b in bases:
        t.add_column(f"vs {BASELINE_LABELS[b]}", justify="right", no_wrap=True)
    for r in rows:
        cells = []
        for b in bases:
            ci = r.get(f"vs_{b}")
            if ci is None:
                cells.append("-")
            else:
                mark = "*" if ci[2] < 0 or ci[1] > 0 else " "
                cells.append(f"{100 * ci[0]:+.2f} [{100 * ci[1]:+.2f},{100 * ci[2]:+.2f}]{mark}")
        t.add_row(r["estimator"], f"{100 * r['vol']:.2f}", *cells)
    out.print(t)
    out.print(f"{d['n_fits']} model fits, {d['fit_seconds']:.0f} s training; "
              f"{d['seconds']:.0f} s in all", highlight=False)  # fmt: skip


@app.command()
def study(
    prices: Path = typer.Argument(..., help="prices or returns file (CSV, CSV.gz or Parquet)"),
    estimators: str | None = typer.Option(
        None,
        "--estimators",
        help="comma-separated registry names (default: sample, ledoit_wolf, nonlinear_shrinkage, "
        "pca, factor_analysis, pca_auto, factor_analysis_auto, vae, factor_analysis_matched, "
        "vae_mlp, vae_reference; with --factors or --macro also cvae, ledoit_wolf_regime); "
        "ledoit_wolf, nonlinear_shrinkage and pca are always raced",
    ),  # fmt: skip
    window: int = typer.Option(504, "--window", "-W", help="training window W (days)"),
    rebalance: int = typer.Option(
        21, "--rebalance", "--horizon", "-H", help="rebalance period H (days)"
    ),
    latent: int = typer.Option(4, "--latent", help="k of the fixed-k rivals (PCA, FA, VAE ref)"),
    beta: float = typer.Option(1.0, "--beta", help="weight of the KL term"),
    epochs: int = typer.Option(300, "--epochs", help="training epochs of the fixed-epoch VAEs"),
    n_samples: int = typer.Option(2000, "--n-samples", help="Monte-Carlo draws (VAE covariance)"),
    n_boot: int = typer.Option(2000, "--n-boot", help="bootstrap resamples per interval"),
    names: int = typer.Option(0, "--names", help="random subset of names (0 = all)"),
    seed: int = typer.Option(42, "--seed"),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto"),
    sectors: Path | None = typer.Option(None, "--sectors", help="sectors file (ticker, sector)"),
    factors: Path | None = typer.Option(None, "--factors", help="daily factors (mkt_rf, rf ...)"),
    macro: Path | None = typer.Option(None, "--macro", help="daily VIX / term spread"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object on stdout"),
    out_path: Path | None = typer.Option(None, "--out", help="write the JSON to this file"),
    markdown: Path | None = typer.Option(None, "--markdown", help="write the table (markdown)"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bar (stderr)"),
) -> None:
    """The walk-forward min-variance horse race of the covariance estimators on PRICES."""
    from vae_pipeline.core.study import (
        StudyConfig,
        check_panel,
        markdown_table,
        resolve_estimators,
        run_study,
    )
    from vae_pipeline.sources import DataFileError

    regime = factors is not None or macro is not None
    config = StudyConfig(window=window, rebalance=rebalance, latent=latent, beta=beta,
                         epochs=epochs, n_samples=n_samples, n_boot=n_boot, seed=seed,
                         device=device, estimators=_estimators(estimators), regime=regime)  # fmt: skip
    try:
        resolve_estimators(config.estimators, regime)
        if latent < 1 or epochs < 1 or n_boot < 10 or n_samples < 1 or names < 0:
            raise ValueError("need --latent, --epochs, --n-samples >= 1, --n-boot >= 10, "
                             "--names >= 0")  # fmt: skip
        inputs = load_study_inputs(prices, sectors, factors, macro, names=names, seed=seed)
        check_panel(inputs.returns, window, rebalance)  # W too long for the file: before any fit
    except (FileNotFoundError, DataFileError, ValueError) as exc:
        _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    err.print(f"{inputs.returns.shape[1]} names x {len(inputs.returns)} days "
              f"({inputs.returns.index[0]:%Y-%m-%d}..{inputs.returns.index[-1]:%Y-%m-%d})",
              highlight=False)  # fmt: skip

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=err, transient=True, disable=not progress)  # fmt: skip
    task = bar.add_task("rebalances", total=None)

    def on_step(done: int, total: int, info: dict[str, Any]) -> None:
        if progress and not err.is_terminal:  # a log, not a terminal: one line per rebalance
            err.print(f"rebalance {done}/{total} ({info['decision']}): {info['n_fits']} model "
                      f"fits, {info['seconds']:.0f} s", highlight=False)  # fmt: skip
        bar.update(
            task,
            completed=done,
            total=total,
            description=f"rebalances (last {info['decision']}, {info['n_fits']} model fits)",
        )

    try:
        with bar:
            result = run_study(inputs.returns, inputs.observables, config, progress=on_step).result
    except ValueError as exc:  # e.g. W too long, an unavailable device
        _fail(str(exc).splitlines()[0])
    result = {"prices": str(prices), **result, "data": inputs.info}
    if out_path is not None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=2, allow_nan=False))
    if markdown is not None:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(markdown_table(result) + "\n", encoding="utf-8")
    if as_json:
        print(json.dumps(result, allow_nan=False))
    else:
        _print_table(result)
