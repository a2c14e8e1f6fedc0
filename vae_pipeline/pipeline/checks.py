"""Asset checks as gates: declared with the asset, evaluated inside it, before storage.

A blocking check that fails after the write would leave bad rows in DuckDB (Dagster
does not undo a write). So each gated asset runs its rules first: on any failure it
yields the failed check results and *no output*, which stores nothing and stops every
downstream asset of the partition; only when all pass is the output yielded (stored)
and the passed results follow.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue, Output

Problems = Mapping[str, list[str]]


def gate_specs(asset: str, names: list[str], warn: list[str] | None = None) -> list[AssetCheckSpec]:
    """Blocking specs for ``names`` plus non-blocking (WARN) specs for ``warn``."""
    specs = [
        AssetCheckSpec(name, asset=asset, blocking=True, description=_DESCRIPTIONS.get(name))
        for name in names
    ]
    specs += [
        AssetCheckSpec(name, asset=asset, blocking=False, description=_DESCRIPTIONS.get(name))
        for name in warn or []
    ]
    return specs


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
    "history_complete": "every stored day the asset reads is there (a missing range names the "
    "command that fills it)",
    "truth_consistent": "the synthetic truth covers every name, with finite loadings and "
    "positive variances",
}
