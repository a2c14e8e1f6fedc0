"""Dagster resources and run config: the data source and the training settings."""

from __future__ import annotations

from dagster import Config, ConfigurableResource
from pydantic import Field, create_model

from vae_pipeline.settings import PipelineSettings
from vae_pipeline.sources import ReturnsSource, make_source


class DataSourceResource(ConfigurableResource):
    """Where returns come from: ``synthetic`` (default, offline) or the user's files."""

    source: str = "synthetic"
    start: str = "2015-01-02"
    kind: str = "linear"
    n_names: int = 60
    seed: int = 42
    min_names: int = 10
    prices_path: str | None = None
    sectors_path: str | None = None

    @classmethod
    def from_settings(cls, settings: PipelineSettings) -> DataSourceResource:
        return cls(
            source=settings.source,
            start=settings.start,
            kind=settings.kind,
            n_names=settings.n_names,
            seed=settings.seed,
            min_names=settings.min_names,
            prices_path=str(settings.prices_path) if settings.prices_path else None,
            sectors_path=str(settings.sectors_path) if settings.sectors_path else None,
        )

    def get(self) -> ReturnsSource:
        settings = PipelineSettings(
            source=self.source,
            start=self.start,
            kind=self.kind,
            n_names=self.n_names,
            seed=self.seed,
            min_names=self.min_names,
            prices_path=self.prices_path,
            sectors_path=self.sectors_path,
        )
        return make_source(settings)


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
        lr=(float, Field(1e-2, gt=0.0, description="Adam learning rate")),
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
    )
