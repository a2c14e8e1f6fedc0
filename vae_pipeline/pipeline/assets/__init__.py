"""Thin asset functions, grouped by stage; the numerics live in ``vae_pipeline.core``."""

from vae_pipeline.pipeline.assets import (
    anomalies,
    evaluation,
    factors,
    features,
    ingest,
    models,
    report,
    risk,
)

__all__ = ["build_assets"]


def build_assets(partitions, settings, training_config) -> list:
    """Every asset of the graph, wired to one partitions definition and one settings object."""
    return [
        *ingest.build(partitions),
        *features.build(partitions, settings, training_config),
        *models.build(partitions, settings, training_config),
        *factors.build(partitions, settings, training_config),
        *risk.build(partitions, settings, training_config),
        *evaluation.build(partitions, settings, training_config),
        *anomalies.build(partitions, settings, training_config),
        *report.build(partitions, settings, training_config),
    ]
