"""Asset checks as gates: declared with the asset, evaluated inside it, before storage.

A blocking check that fails after the write would leave bad rows in DuckDB (Dagster
does not undo a write). So each gated asset runs its rules first: on any failure it
yields the failed check results and *no output*, which stores nothing and stops every
downstream asset of the partition; only when all pass is the output yielded (stored)
and the passed results follow.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    MetadataValue,
    Output,
    PreviewWarning,
)

from vae_pipeline.report.html import figure_div_id

Problems = Mapping[str, list[str]]


def gate_specs(
    asset: str, names: list[str], warn: list[str] | None = None, partitions=None
) -> list[AssetCheckSpec]:
    """Blocking specs for ``names`` plus non-blocking (WARN) specs for ``warn``.

    ``partitions``: the asset's partitions definition, so each check is partitioned like its
    asset and the UI shows the gate per day (the Checks tab's partition status: which days
    passed, failed, were never evaluated). A result is recorded against the partition of the
    run (Dagster 1.13 fills it in from the step's partition key; ``AssetCheckResult`` has no
    ``partition`` argument), so a ranged run's results carry no partition.
    """
    with warnings.catch_warnings():
        # partitioned asset checks are a preview feature of Dagster 1.13 (AssetCheckSpec's
        # partitions_def); the warning would print on every load of the code location
        warnings.simplefilter("ignore", PreviewWarning)
        return [
            AssetCheckSpec(
                name,
                asset=asset,
                blocking=blocking,
                description=_DESCRIPTIONS.get(name),
                partitions_def=partitions,
            )
            for names_, blocking in ((names, True), (warn or [], False))
            for name in names_
        ]


def gate(
    context,
    value,
    problems: Problems,
    metadata: dict | None = None,
    warnings: Problems | None = None,
) -> Iterator:
    """Yield the output and check results, or only failed results when a rule broke."""
    failed = {name: found for name, found in problems.items() if found}
    if failed:
        for name, found in failed.items():
            context.log.error(f"check {name} failed: " + "; ".join(found))
        # a declared check the failure kept from running is reported as not passed, not dropped
        unrun = f"not evaluated: {', '.join(failed)} failed first"
        declared = [spec.name for spec in context.assets_def.check_specs]
        yield from _results({**{n: [unrun] for n in declared if n not in problems}, **problems})
        return
    yield Output(value, metadata=metadata or {})
    yield from _results(problems)
    for name, found in (warnings or {}).items():
        yield AssetCheckResult(
            check_name=name,
            passed=not found,
            severity=AssetCheckSeverity.WARN,
            metadata={"detail": MetadataValue.md("; ".join(found) or "ok")},
        )


def interpretation_problems(rows: pd.DataFrame, latents: Iterable[str]) -> list[str]:
    """The rules of ``factor_interpretation`` (rows: metric, method, latent, target, value):
    every value finite, every |corr| and R^2 in [0, 1], and exactly one |corr| row per
    (latent, target) for each latent of ``latents`` (the day's latent_factors) and no other."""
    problems = []
    values = rows["value"].to_numpy(dtype=float)
    if (bad := int((~np.isfinite(values)).sum())) > 0:
        problems.append(f"{bad} non-finite values")
    outside = rows[(rows["value"] < 0) | (rows["value"] > 1)]
    if len(outside):
        first = outside.iloc[0]
        problems.append(
            f"{len(outside)} values outside [0, 1] (e.g. {first['metric']} of "
            f"{first['latent'] or first['target']}: {first['value']:.4g})"
        )
    corr = rows[rows["metric"] == "abs_corr"]
    expected, found = set(latents), set(corr["latent"])
    if missing := sorted(expected - found):
        problems.append(f"latents without a |corr| row: {missing}")
    if extra := sorted(found - expected):
        problems.append(f"|corr| rows of latents not in latent_factors: {extra}")
    counts = corr.groupby(["latent", "target"]).size()
    targets = corr["target"].nunique()
    if (counts != 1).any() or len(counts) != len(found) * targets:
        problems.append(
            f"not one |corr| row per (latent, target): {len(corr)} rows for {len(found)} "
            f"latents x {targets} targets"
        )
    return problems


def report_problems(path: Path, sections: Iterable[str], required: Iterable[str]) -> list[str]:
    """The rules of the ``report`` page written to ``path``: the file exists and is not
    empty, every drawn section (``sections``: figure keys) is on the page with its figure, and
    none of ``required`` (the sections every stored partition draws) is missing."""
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return [f"{path} was not written or is empty"]
    page = path.read_text(encoding="utf-8")
    sections = list(sections)
    problems = [f"section {key!r} not drawn" for key in required if key not in sections]
    problems += [
        f"section {key!r} missing from the page"
        for key in sections
        if f'<section id="{key}">' not in page or f'id="{figure_div_id(key)}"' not in page
    ]
    if "</html>" not in page:
        problems.append("the page is truncated (no closing </html>)")
    return problems


def _results(problems: Problems) -> Iterator[AssetCheckResult]:
    for name, found in problems.items():
        yield AssetCheckResult(
            check_name=name,
            passed=not found,
            metadata={"problems": MetadataValue.md("\n".join(f"- {p}" for p in found) or "none")},
        )


_DESCRIPTIONS = {
    "finite_bounded": "every value finite and inside sane bounds",
    "unique_date_ticker": "no (date, ticker) pair twice",
    "enough_names": "each cross-section holds at least the configured minimum of names",
    "observables_valid": "market, volatility and macro slope finite; regime in {0, 1}",
    "window_complete": "the training window holds all W trading days (it shrinks near the start and over gaps)",
    "standardised_moments": "the z-scored window has mean ~0 and std ~1 per name",
    "loss_finite_decreasing": "the training loss is finite and ends below where it started",
    "weights_finite": "every model weight is finite",
    "kl_nonnegative": "the KL term is >= 0 in every epoch",
    "latents_finite": "every posterior mean is finite",
    "covariance_symmetric_psd": "every estimator's covariance is symmetric positive semi-definite",
    "weights_sum_to_one": "every min-var portfolio's weights sum to 1",
    "every_estimator_scored": "each estimator of the decision date has a finite realised vol",
    "vae_beats_ledoit_wolf": "WARN when the VAE's realised vol is above Ledoit-Wolf's (drift alert)",
    "errors_finite": "every reconstruction error is finite",
    "embedding_finite": "every embedding coordinate is finite",
    "interpretation_valid": "every |corr| and true-factor R^2 finite and in [0, 1], one |corr| "
    "row per latent and observable",
    "report_complete": "the HTML page is written, not empty, and holds every section with its "
    "figure",
    "history_complete": "every stored day the asset reads is there (a missing range names the "
    "command that fills it)",
    "truth_consistent": "the synthetic truth covers every name, with finite loadings and "
    "positive variances",
}
