"""Dagster resources and run config: the data source and the training settings."""

from __future__ import annotations

from pathlib import Path

from dagster import Config, ConfigurableResource
from pydantic import Field, create_model

from vae_pipeline.core.warm_start import WARM_EPOCHS, WARM_LR
from vae_pipeline.settings import PipelineSettings
from vae_pipeline.sources import ReturnsSource, make_source


class DataSourceResource(ConfigurableResource):
    """Where returns come from: ``synthetic`` (default, offline), ``csv`` (the user's files) or
    ``yfinance`` (downloads cached in DuckDB), with the cleaning thresholds of real data."""

    source: str = "synthetic"
    start: str = "2015-01-02"
    kind: str = "linear"
    n_names: int = 60
    seed: int = 42
    min_names: int = 10
    window: int = 504
    prices_path: str | None = None
    sectors_path: str | None = None
    factors_path: str | None = None
    macro_path: str | None = None
    market_path: str | None = None
    tickers: str | None = None
    universe_path: str | None = None
    cache_path: str | None = None
    fetch_retries: int = 4
    min_coverage: float = 1.0
    max_fill_run: int = 5
    stale_days: int = 5
    split_move: float = 1.8
    split_tolerance: float = 0.1
    max_move: float = 4.0
    winsor_low: float = -0.75
    winsor_high: float = 1.0

    @classmethod
    def from_settings(cls, settings: PipelineSettings) -> DataSourceResource:
        values = {name: getattr(settings, name) for name in _SOURCE_FIELDS}
        values = {k: str(v) if isinstance(v, Path) else v for k, v in values.items()}
        values["cache_path"] = str(settings.cache_path or settings.db_path)
        return cls(**values)

    def source_settings(self) -> PipelineSettings:
        """The source's settings (the fields not held here keep their defaults)."""
        return PipelineSettings(**{name: getattr(self, name) for name in _SOURCE_FIELDS})

    def get(self) -> ReturnsSource:
        return make_source(self.source_settings())


# Settings fields a data source needs (the resource holds exactly these).
_SOURCE_FIELDS = [
    "source", "start", "kind", "n_names", "seed", "min_names", "window", "prices_path",
    "sectors_path", "factors_path", "macro_path", "market_path", "tickers", "universe_path",
    "cache_path", "fetch_retries", "min_coverage", "max_fill_run", "stale_days", "split_move",
    "split_tolerance", "max_move", "winsor_low", "winsor_high",
]  # fmt: skip


def training_config_class(settings: PipelineSettings) -> type[Config]:
    """``TrainingConfig`` with its defaults taken from the environment's settings.

    Built per settings so ``make run`` and CI need no YAML, while the launchpad still
    shows (and lets a user override) every field.
    """
    return create_model(
        "TrainingConfig",
        __base__=Config,
        __doc__="Training settings of the VAE and CVAE refit (defaults from VAE_PIPELINE_*).",
        latent_dim=(int, Field(settings.latent_dim, ge=1, description="latent factors k")),
        beta=(float, Field(settings.beta, ge=0.0, description="weight of the KL term")),
        epochs=(int, Field(settings.epochs, ge=1, description="full-batch Adam epochs")),
        lr=(float, Field(3e-2, gt=0.0, description="Adam learning rate")),
        hidden=(int, Field(64, ge=1, description="encoder hidden units")),
        seed=(int, Field(settings.seed, ge=0, description="torch / numpy seed")),
        window=(
            int,
            Field(
                settings.window,
                ge=20,
                le=settings.window,
                description="training window W in trading days (at most the mapped W)",
            ),
        ),
        horizon=(
            int,
            Field(settings.horizon, ge=1, description="evaluation horizon H (trading days)"),
        ),
        device=(str, Field(settings.device, description="auto | cpu | cuda | cuda:N")),
        warm_start=(
            bool,
            Field(
                settings.warm_start,
                description="seed the VAE / CVAE with the previous partition's and refit "
                "warm_epochs at warm_lr (needs VAE_PIPELINE_WARM_START=1: the lineage)",
            ),
        ),
        warm_epochs=(int, Field(WARM_EPOCHS, ge=1, description="epochs of a warm-started refit")),
        warm_lr=(float, Field(WARM_LR, gt=0.0, description="Adam learning rate of a warm refit")),
    )
