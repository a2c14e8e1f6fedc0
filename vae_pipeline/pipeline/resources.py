"""Dagster resources: the data source and the training settings, both built from the one
:class:`~vae_pipeline.settings.PipelineSettings`."""

from __future__ import annotations

import pandas as pd
from dagster import ConfigurableResource
from pydantic import Field, create_model

from vae_pipeline.core.refit import WarmChains, cold_train_config
from vae_pipeline.core.training import TrainConfig
from vae_pipeline.settings import PipelineSettings
from vae_pipeline.sources import ReturnsSource, make_source
from vae_pipeline.sources.base import first_date


class DataSourceResource(ConfigurableResource):
    """Where returns come from: ``synthetic`` (default, offline), ``csv`` (the user's files) or
    ``yfinance`` (downloads cached in DuckDB), with the cleaning thresholds of real data. It
    carries the pipeline's settings as they were loaded (structural: not edited per run)."""

    settings_json: str = Field(description="the PipelineSettings the definitions were built from")

    @classmethod
    def from_settings(cls, settings: PipelineSettings) -> DataSourceResource:
        return cls(settings_json=settings.model_dump_json())

    @property
    def settings(self) -> PipelineSettings:
        return PipelineSettings.model_validate_json(self.settings_json)

    @property
    def min_names(self) -> int:
        return self.settings.data.min_names

    @property
    def source(self) -> str:
        return self.settings.data.source

    def get(self) -> ReturnsSource:
        return make_source(self.settings)

    def first_day(self) -> pd.Timestamp:
        """The first partition that can hold data: the configured start, or the source's first
        day with a return when that is later (a window gap before it cannot be filled)."""
        start = pd.Timestamp(self.settings.data.start)
        first = first_date(self.get())
        return start if first is None else max(start, pd.Timestamp(first))


class TrainingResource(ConfigurableResource):
    """Training settings of the VAE and CVAE refit, shared by every asset of a run: edit them
    once in the launchpad (``resources: training: config: ...``). Defaults from
    ``VAE_PIPELINE_*``. W and H are not here: they fix the partition mappings."""

    latent_dim: int = Field(4, ge=1, description="latent factors k")
    beta: float = Field(1.0, ge=0.0, description="weight of the KL term")
    epochs: int = Field(300, ge=1, description="full-batch Adam epochs")
    lr: float = Field(3e-2, gt=0.0, description="Adam learning rate")
    hidden: int = Field(64, ge=1, description="encoder hidden units")
    seed: int = Field(42, ge=0, description="torch / numpy seed")
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    warm_start: bool = Field(
        False,
        description="seed the VAE / CVAE with the previous partition's and refit warm_epochs at "
        "warm_lr (needs VAE_PIPELINE_WARM_START=1: the lineage)",
    )
    warm_epochs: int = Field(100, ge=1, description="epochs of a warm-started refit")
    warm_lr: float = Field(1e-2, gt=0.0, description="Adam learning rate of a warm refit")
    chain_length: int = Field(
        16,
        ge=0,
        description="a ranged run (backfill) trains its Adam models as warm-start chains, as many as "
        "make it cheapest, of at most this many days, warm_epochs at warm_lr after each "
        "chain's cold first day (0: every day cold)",
    )

    def chains(self) -> WarmChains | None:
        """The warm-start chains of a ranged run (None: ``chain_length`` 0, every day cold)."""
        if not self.chain_length:
            return None
        return WarmChains(epochs=self.warm_epochs, lr=self.warm_lr, length=self.chain_length)

    @classmethod
    def from_settings(cls, settings: PipelineSettings) -> TrainingResource:
        """The resource with the settings' values as its *defaults*: run config given in the
        launchpad replaces the whole resource config, so a partial edit (``beta`` alone) must
        fall back to ``VAE_PIPELINE_*`` rather than to the class defaults."""
        values = {"seed": settings.seed}
        values.update({f: getattr(settings.model, f) for f in cls.model_fields if f != "seed"})
        fields = {
            name: (info.annotation, Field(values[name], **_constraints(info)))
            for name, info in cls.model_fields.items()
        }
        configured = create_model(cls.__name__, __base__=cls, __doc__=cls.__doc__, **fields)
        return configured()

    def train_config(self) -> TrainConfig:
        """The cold fit's :class:`TrainConfig` (validated: a bad device fails here), built as
        every caller of the core refit builds it."""
        return cold_train_config(self)


def _constraints(info) -> dict:
    """A field's description and numeric bounds, carried over to the configured subclass."""
    out = {"description": info.description}
    for meta in info.metadata:
        for bound in ("ge", "gt", "le", "lt"):
            if getattr(meta, bound, None) is not None:
                out[bound] = getattr(meta, bound)
    return out
