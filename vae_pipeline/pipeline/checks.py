"""Asset checks as gates: declared with the asset, evaluated inside it, before storage.

A blocking check that fails after the write would leave bad rows in DuckDB (Dagster
does not undo a write). So each gated asset runs its rules first: on any failure it
yields the failed check results and *no output*, which stores nothing and stops every
downstream asset of the partition; only when all pass is the output yielded (stored)
and the passed results follow.

A ranged run (a single-run backfill) gates each day as a one-day run would (:func:`gate_days`):
a day that breaks a rule stores nothing, and the check result names it. The days that passed
are stored; the check then fails at WARN severity (so the run's downstream assets go on with
the days that passed, and skip the refused ones, naming them). Only when every day of the
range is refused does the check fail at ERROR severity and stop the run's downstream, exactly
like a one-day run (docs/architecture.md, "Backfill").
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
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


@dataclass
class DayGate:
    """One day's outcome in a run: the value to store (None when refused), its rules'
    problems, the output metadata and the WARN checks' findings; or ``skipped``: why the day
    was not computed (an input holds nothing for it: its own gate refused the day)."""

    value: object = None
    problems: Problems = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)
    warnings: Problems | None = None
    skipped: str | None = None

    @property
    def refused(self) -> bool:
        return any(self.problems.values())


def skipped(reason: str) -> DayGate:
    """A day not computed: an input of the run holds nothing for it."""
    return DayGate(skipped=reason)


def gate_days(context, days: Mapping, combine: Callable[[list], object]) -> Iterator:
    """The gate of a run over several days (``days``: day -> :class:`DayGate`, in date order).

    One day: exactly :func:`gate`. Several: the values of the days that passed, ``combine``d
    into one output (the IO manager replaces the whole range, so a refused or skipped day
    holds no rows); each check's problems prefixed by their day; a check failed on some days
    only is reported at WARN severity (the days that passed go on downstream), on every day
    at ERROR. A skipped day (its input refused upstream) is named in the output metadata and
    the log; when no day is left to store, the first check fails naming why."""
    first = context.assets_def.check_specs
    first = next(iter(first)).name if first else None
    skips = {day: g.skipped for day, g in days.items() if g.skipped}
    if len(skips) == len(days):  # nothing computed: fail like a refused day
        days = {d: DayGate(problems={first: [why]}) for d, why in skips.items()}
    if len(days) == 1:
        (outcome,) = days.values()
        yield from gate(context, outcome.value, outcome.problems, outcome.metadata,
                        outcome.warnings)  # fmt: skip
        return
    dated = lambda found: {  # noqa: E731
        name: [f"{day:%Y-%m-%d}: {p}" for day, g in days.items() for p in found(g).get(name, [])]
        for name in dict.fromkeys(n for g in days.values() for n in found(g))
    }
    problems, warnings = dated(lambda g: g.problems), dated(lambda g: g.warnings or {})
    passed = [day for day, g in days.items() if not g.refused and not g.skipped]
    refused = [f"{day:%Y-%m-%d}" for day, g in days.items() if g.refused]
    if not passed:
        yield from gate(context, None, problems)
        return
    for day in refused:
        context.log.error(f"{day} refused: nothing stored for it (see the check results)")
    for day, why in skips.items():
        context.log.warning(f"{day:%Y-%m-%d} skipped: {why}")
    metadata = {**days[passed[-1]].metadata, "days_stored": len(passed),
                "days_refused": ", ".join(refused) or "none",
                "days_skipped": ", ".join(f"{d:%Y-%m-%d}" for d in skips) or "none"}  # fmt: skip
    yield Output(combine([days[d].value for d in passed]), metadata=metadata)
    severity = AssetCheckSeverity.WARN if refused else AssetCheckSeverity.ERROR
    for name, found in problems.items():
        yield AssetCheckResult(
            check_name=name,
            passed=not found,
            severity=severity,
            metadata={"problems": MetadataValue.md("\n".join(f"- {p}" for p in found) or "none"),
                      "failed_days": ", ".join(sorted({p[:10] for p in found})) or "none"},
        )  # fmt: skip
    for name, found in warnings.items():
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
