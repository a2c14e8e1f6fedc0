"""Where returns come from: the seeded synthetic panel, or the user's files (no Dagster here)."""

from vae_pipeline.sources.base import ReturnsSource
from vae_pipeline.sources.synthetic import SyntheticSource

__all__ = ["ReturnsSource", "SyntheticSource", "make_source"]


def make_source(settings) -> ReturnsSource:
    """The source named by ``settings.source`` (see ``vae_pipeline.settings``)."""
    if settings.source == "synthetic":
        return SyntheticSource(
            start=settings.start, n_names=settings.n_names, kind=settings.kind, seed=settings.seed
        )
    raise ValueError(f"unknown or unsupported data source {settings.source!r}: use 'synthetic'")
