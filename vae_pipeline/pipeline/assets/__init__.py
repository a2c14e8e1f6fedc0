"""Thin asset functions, grouped by stage: each loads its inputs, calls one ``core`` stage,
gates, stores. The numerics live in ``vae_pipeline.core``."""

from vae_pipeline.pipeline.assets import (
    anomalies,
    evaluation,
    factors,
    features,
    ingest,
    models,
    report,
    risk,
    truth,
)
from vae_pipeline.pipeline.assets.report import ON_DEMAND

__all__ = ["ON_DEMAND", "build_assets"]


def build_assets(partitions, settings) -> list:
    """Every asset of the graph, wired to one partitions definition and one settings object."""
    return [
        *ingest.build(partitions, settings),
        *truth.build(partitions, settings),
        *features.build(partitions, settings),
        *models.build(partitions, settings),
        *factors.build(partitions, settings),
        *risk.build(partitions, settings),
        *evaluation.build(partitions, settings),
        *anomalies.build(partitions, settings),
        *report.build(partitions, settings),
    ]
