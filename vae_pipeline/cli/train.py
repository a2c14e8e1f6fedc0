"""The ``vae`` command line (typer): ``vae train`` runs the end-to-end synthetic experiment.

``vae train --json`` prints exactly one JSON object on stdout (progress goes to stderr); without
``--json`` it prints rich tables. Bad options give a one-line error and exit code 2, never a
traceback.
"""

from __future__ import annotations

import json
import math
from contextlib import contextmanager
from typing import Any

import typer
from pydantic import ValidationError
from rich import box
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vae_pipeline.cli.app import USAGE_ERROR, _fail, app, err, out  # noqa: F401


def _validation_message(exc: ValidationError) -> str:
    """One readable line per problem, e.g. ``beta: Input should be greater than or equal to 0``."""
    parts = []
    for e in exc.errors():
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "__root__")
        msg = str(e.get("msg", "")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


@contextmanager
def _progress_bar(enabled: bool):
    """A rich progress bar on stderr; yields the ``progress(stage, done, total)`` callback."""
    if not enabled:
        yield None
        return
    bar = Progress(
        TextColumn("{task.description:<13}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], completed=done, total=total)

    with bar:
        yield progress


def _pct(x: float | None, signed: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "-"
    return f"{100 * x:+.2f}" if signed else f"{100 * x:.2f}"


def _ci(ci: list[float] | None) -> str:
    if ci is None:
        return "-"
    diff, lo, hi = ci
    mark = "*" if (hi < 0 or lo > 0) else " "
    return f"{100 * diff:+.2f} [{100 * lo:+.2f},{100 * hi:+.2f}]{mark}"


def _print_tables(d: dict[str, Any]) -> None:
    cfg = d["config"]
    mode = "walk-forward" if d["mode"] == "walk_forward" else "single split"
    title = (
        f"Min-variance horse race ({mode}, {cfg['kind']} panel, N={cfg['n_names']}, "
        f"T={cfg['n_days']}, k={cfg['latent']}, {d['n_rebalances']} rebalance(s))"
    )
    t = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        caption="vol and gap to oracle in % a year; vs: diff [95 % paired block bootstrap], "
        "* = interval excludes 0",
    )
    for col in ("estimator", "vol %", "gap to oracle", "vs Ledoit-Wolf", "vs PCA"):
        t.add_column(col, justify="left" if col == "estimator" else "right", no_wrap=True)
    for name, vol in d["minvar"].items():
        ci = d["intervals"][name]
        t.add_row(
            name,
            _pct(vol),
            _pct(d["gap_to_oracle"][name], signed=True),
            _ci(ci["vs_ledoit_wolf"]),
            _ci(ci["vs_pca"]),
        )
    out.print(t)

    if d.get("per_regime"):
        regimes = list(d["per_regime"])
        t = Table(title="Per regime at the decision date (vol %)")
        t.add_column("estimator")
        for r in regimes:
            info = d["per_regime"][r]
            t.add_column(f"{r} ({info['n_days']} d)", justify="right")
        for name in d["minvar"]:
            t.add_row(name, *[_pct(d["per_regime"][r]["vol"].get(name)) for r in regimes])
        out.print(t)

    rec = d["factor_recovery"]
    t = Table(title="True-factor recovery R^2 (each factor on all latents, training part)")
    t.add_column("factor")
    for method in rec:
        t.add_column(method, justify="right")
    for i, factor in enumerate(d["factor_names"]):
        t.add_row(factor, *[f"{rec[m][i]:.3f}" for m in rec])
    out.print(t)

    t = Table(title="Strongest |corr| of any latent with each observable")
    t.add_column("observable")
    t.add_column("series")
    t.add_column("vae", justify="right")
    for method in d["baseline_latent_observable_corr"]:
        t.add_column(method, justify="right")
    for obs, val in d["latent_observable_corr"].items():
        base = [
            d["baseline_latent_observable_corr"][m].get(obs)
            for m in d["baseline_latent_observable_corr"]
        ]
        t.add_row(
            obs,
            d["latent_observable_series"][obs],
            *[("-" if v is None else f"{v:.3f}") for v in [val, *base]],
        )
    for obs, val in d["latent_observable_corr_level"].items():
        t.add_row(obs, "level", "-" if val is None else f"{val:.3f}", *["" for _ in base])
    out.print(t)

    a = d["anomaly"]
    t = Table(title="Anomaly test (training-part reconstruction error vs later residual drawdown)")
    t.add_column("measure")
    t.add_column("value", justify="right")
    rho = a["error_vs_anomaly_rho"]
    t.add_row("Spearman(error, planted flag)", "-" if rho is None else f"{rho:+.3f}")
    t.add_row(
        f"mean drawdown, top {a['n_high']} by error", f"{100 * a['high_error_mean_dd']:.1f} %"
    )
    t.add_row(f"mean drawdown, other {a['n_low']}", f"{100 * a['low_error_mean_dd']:.1f} %")
    lo, hi = a["partial_rho_ci"]
    t.add_row(
        "partial Spearman given trailing residual vol",
        f"{a['partial_rho_given_idio_vol']:+.3f} [{lo:+.3f}, {hi:+.3f}]",
    )
    out.print(t)

    tr = d["train"]
    extra = f"; cvae final loss {d['train_cvae']['final_loss']:.3f}" if d.get("train_cvae") else ""
    out.print(
        f"train: {tr['epochs']} epochs, final loss {tr['final_loss']:.3f}, {tr['seconds']:.1f} s "
        f"on {d['train_device']} (lr {d['lr']:g}){extra}; {d['n_fits']} fits "
        f"{d['fit_seconds']:.1f} s; total {d['seconds']:.1f} s"
    )


@app.command()
def train(
    latent: int = typer.Option(
        4, "--latent", help="latent dimensions k (also PCA / FA components)"
    ),
    beta: float = typer.Option(1.0, "--beta", help="weight of the KL term (>= 0)"),
    epochs: int = typer.Option(300, "--epochs", help="training epochs (full-batch Adam steps)"),
    conditional: bool = typer.Option(False, "--conditional", help="also train a regime CVAE"),
    seed: int = typer.Option(42, "--seed"),
    kind: str = typer.Option("linear", "--kind", help="synthetic panel: linear or regime"),
    walk_forward: bool = typer.Option(
        False, "--walk-forward", help="rolling walk-forward horse race instead of one split"
    ),
    as_json: bool = typer.Option(False, "--json", help="print one JSON object on stdout"),
    n_names: int = typer.Option(60, "--n-names", help="number of stocks N"),
    n_days: int = typer.Option(1260, "--n-days", help="number of trading days T"),
    window: int = typer.Option(504, "--window", help="walk-forward training window (days)"),
    rebalance: int = typer.Option(21, "--rebalance", help="walk-forward rebalance period (days)"),
    lr: float | None = typer.Option(
        None, "--lr", help="Adam learning rate [default: TrainConfig's]"
    ),
    decoder: str = typer.Option("linear", "--decoder", help="linear or mlp"),
    n_samples: int = typer.Option(2000, "--n-samples", help="Monte-Carlo draws (VAE covariance)"),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto"),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="progress bar (stderr)"),
) -> None:
    """Train the VAE on the synthetic panel and run every analysis (min-var, factors, anomalies)."""
    from vae_pipeline.core.experiment import ExperimentConfig, run_experiment

    options = dict(
        latent=latent,
        beta=beta,
        epochs=epochs,
        conditional=conditional,
        seed=seed,
        kind=kind,
        walk_forward=walk_forward,
        n_names=n_names,
        n_days=n_days,
        window=window,
        rebalance=rebalance,
        lr=lr,
        decoder=decoder,
        n_samples=n_samples,
        device=device,
    )
    try:  # validate everything before any work, so a bad option fails fast
        ExperimentConfig(**options)
    except ValidationError as exc:
        _fail(_validation_message(exc))
    try:
        with _progress_bar(progress) as callback:
            report = run_experiment(**options, progress=callback)
    except ValueError as exc:  # e.g. an unavailable device
        _fail(str(exc))
    d = report.to_json_dict()
    if as_json:
        # print(), not rich: no wrapping or markup, exactly one JSON document on stdout.
        print(json.dumps(d, allow_nan=False))
    else:
        _print_tables(d)
