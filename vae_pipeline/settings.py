"""The pipeline's one settings object: the only code that reads ``VAE_PIPELINE_*`` and ``.env``.

Settings come in groups, each a frozen model: ``data`` (where returns come from and how they
are cleaned), ``model`` (the VAE / CVAE training defaults), ``evaluation`` (the window W and the
horizon H: structural, they fix the partition mappings, so no run config can change them),
``storage`` (the DuckDB file or the Parquet root) and ``runtime`` (executor, schedule). The
environment names stay flat (``VAE_PIPELINE_EPOCHS``, not ``..._MODEL__EPOCHS``): each field's
variable is listed once in :data:`ENV_NAMES`, and the same names are accepted as keyword
arguments, so ``PipelineSettings(window=60, epochs=30)`` reads like the ``.env`` it mirrors.

Precedence, highest first: keyword arguments, the process environment, the ``.env`` file
(``VAE_PIPELINE_ENV_FILE``, default ``./.env``), the defaults. ``vae``, ``make run``,
``make ui`` and ``dagster asset materialize`` all build their definitions from this object, so
one ``.env`` gives every entry point the same pipeline. A bad value fails at load with the
variable's name.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "VAE_PIPELINE_"
ENV_FILE_VARIABLE = ENV_PREFIX + "ENV_FILE"


class _Group(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSettings(_Group):
    """Where returns come from (``synthetic`` offline default, ``csv``, ``yfinance``) and how
    real data is cleaned."""

    source: Literal["synthetic", "csv", "yfinance"] = "synthetic"
    start: str = Field("2015-01-02", description="first partition (YYYY-MM-DD)")
    kind: Literal["linear", "regime"] = Field("linear", description="synthetic panel kind")
    n_names: int = Field(60, ge=2, le=20000, description="synthetic universe size")
    min_names: int = Field(10, ge=2, description="fewest names a cross-section may hold")
    prices_path: Path | None = Field(None, description="prices or returns (CSV / Parquet)")
    sectors_path: Path | None = Field(None, description="ticker, sector CSV")
    factors_path: Path | None = Field(None, description="French-style daily factors CSV")
    macro_path: Path | None = Field(None, description="CSV with vix and a term spread")
    market_path: Path | None = Field(None, description="CSV of a market index level")
    tickers: str | None = Field(None, description="yfinance tickers, comma-separated")
    universe_path: Path | None = Field(None, description="yfinance universe CSV (ticker[,sector])")
    cache_path: Path | None = Field(None, description="DuckDB file of raw downloads (default: db)")
    fetch_retries: int = Field(4, ge=1, le=20, description="attempts per download")
    min_coverage: float = Field(1.0, gt=0.0, le=1.0, description="genuine-return share of W")
    max_fill_run: int = Field(5, ge=0, le=252, description="longest hole filled with 0")
    stale_days: int = Field(5, ge=0, le=252, description="zero-return run that is stale (0 off)")
    split_move: float = Field(1.8, gt=1.0, description="price factor opening a reversed pair")
    split_tolerance: float = Field(0.1, ge=0.0, le=1.0, description="reversal tolerance")
    max_move: float = Field(4.0, gt=1.0, description="price factor of an absurd single day")
    winsor_low: float = Field(-0.75, ge=-0.95, lt=0.0, description="lowest stored return")
    winsor_high: float = Field(1.0, gt=0.0, le=1.0, description="highest stored return")


class ModelSettings(_Group):
    """Training defaults of the VAE and CVAE (the launchpad's ``training`` resource starts
    from these)."""

    latent_dim: int = Field(4, ge=1, le=64, description="latent factors k")
    beta: float = Field(1.0, ge=0.0, le=100.0, description="weight of the KL term")
    epochs: int = Field(300, ge=1, le=100000, description="full-batch Adam epochs")
    lr: float = Field(3e-2, gt=0.0, le=10.0, description="Adam learning rate")
    hidden: int = Field(64, ge=1, le=4096, description="encoder hidden units")
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    # Seed each partition's VAE / CVAE with the previous trading day's (a self-dependency of
    # trained_vae / trained_cvae in the graph, so it is structural: see core.warm_start).
    warm_start: bool = Field(False, description="warm-start refits from the previous partition")
    warm_epochs: int = Field(100, ge=1, le=100000, description="epochs of a warm-started refit")
    warm_lr: float = Field(1e-2, gt=0.0, le=10.0, description="Adam learning rate of a warm refit")
    # A ranged run (a backfill) trains its Adam models (vae_mlp, the reference VAE / CVAE and
    # their learned-noise siblings) as warm-start chains, as many as make it cheapest, each of
    # at most this many days (warm_epochs at warm_lr after each chain's cold first day;
    # core.refit.models.WarmChains); 0: every day cold, as a one-day run.
    chain_length: int = Field(
        16, ge=0, le=100000, description="most days per warm-start chain of a ranged run (0: cold)"
    )
    embedding: Literal["umap", "pca", "auto"] = Field(
        "umap", description="stock map: umap (default), pca, or auto (umap if installed)"
    )


class EvaluationSettings(_Group):
    """The training window W and the evaluation horizon H, in trading days. They fix the
    partition mappings (partition d reads [d-W+1, d] and scores the decision of d-H)."""

    window: int = Field(504, ge=20, le=5000, description="training window W (trading days)")
    horizon: int = Field(21, ge=1, le=252, description="evaluation horizon H (trading days)")

    @property
    def window_weekdays(self) -> int:
        """Weekday partitions spanned by W trading days, with room for holidays."""
        return self.window + self.window // 20 + 5

    @property
    def horizon_weekdays(self) -> int:
        """Weekday partitions spanned by H trading days, with room for holidays."""
        return self.horizon + self.horizon // 20 + 5


class StorageSettings(_Group):
    """Where the assets are stored: one DuckDB file (default) or Parquet files under a root
    several workers share (a folder, or an fsspec URL such as ``s3://bucket/prefix``)."""

    db_path: Path = Field(Path("data/vae_pipeline.duckdb"), description="the DuckDB file")
    io: Literal["duckdb", "parquet"] = Field("duckdb", description="storage backend")
    parquet_root: str = Field("data/parquet", description="Parquet root (io=parquet)")
    cache_mb: int = Field(512, ge=0, description="MB of return windows cached per process")


class RuntimeSettings(_Group):
    """How runs execute: the executor, its concurrency, and the daily schedule's start state."""

    executor: Literal["in_process", "multiprocess", "k8s", "celery", "dask"] = "in_process"
    max_concurrent: int = Field(2, ge=1, le=256, description="multiprocess executor's steps")
    dask_address: str | None = Field(
        None, description="Dask scheduler (tcp://host:8786) of executor=dask; none: a local cluster"
    )
    dask_workers: int = Field(2, ge=1, le=256, description="worker processes of a local cluster")
    schedule: Literal["stopped", "running"] = Field("stopped", description="daily schedule")
    # Dagster's console stream of the runs `vae run` / `vae backfill` launch (the commands
    # print one line per step themselves); DEBUG = every event, as `vae run --verbose`.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "CRITICAL", description="Dagster console log level of vae run (DEBUG: every event)"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value


# group -> model; field -> its environment variable (suffix after VAE_PIPELINE_), where the
# name differs from the upper-cased field name. Field names are unique across groups.
GROUPS: dict[str, type[_Group]] = {
    "data": DataSettings,
    "model": ModelSettings,
    "evaluation": EvaluationSettings,
    "storage": StorageSettings,
    "runtime": RuntimeSettings,
}
_RENAMED = {
    "db_path": "DB",
    "latent_dim": "LATENT",
    "prices_path": "PRICES",
    "sectors_path": "SECTORS",
    "factors_path": "FACTORS",
    "macro_path": "MACRO",
    "market_path": "MARKET",
    "universe_path": "UNIVERSE",
    "cache_path": "CACHE",
}
# (group or None for top level, field) -> environment variable
ENV_NAMES: dict[tuple[str | None, str], str] = {
    **{
        (group, name): ENV_PREFIX + _RENAMED.get(name, name.upper())
        for group, cls in GROUPS.items()
        for name in cls.model_fields
    },
    (None, "seed"): ENV_PREFIX + "SEED",
}
_FIELD_GROUP = {name: group for (group, name) in ENV_NAMES}
# Set by ``from_env(environ)``: read exactly that mapping instead of os.environ and .env.
_GIVEN_ENVIRONMENT: ContextVar[Mapping[str, str] | None] = ContextVar("environ", default=None)


def env_file() -> Path:
    """The ``.env`` file read (``VAE_PIPELINE_ENV_FILE``, default ``./.env``)."""
    return Path(os.environ.get(ENV_FILE_VARIABLE, "").strip() or ".env")


class _FlatEnvironment(PydanticBaseSettingsSource):
    """``VAE_PIPELINE_<NAME>`` variables of one mapping (the process environment or the
    ``.env`` file), routed into their groups by :data:`ENV_NAMES`."""

    def __init__(self, settings_cls: type[BaseSettings], variables: dict[str, str | None]):
        super().__init__(settings_cls)
        self.variables = variables

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # everything is assembled in __call__

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for (group, name), variable in ENV_NAMES.items():
            raw = (self.variables.get(variable) or "").strip()
            if not raw:
                continue
            if group is None:
                values[name] = raw
            else:
                values.setdefault(group, {})[name] = raw
        return values


def _route_flat(values: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments by field name (``window=60``) moved into their groups."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        group = _FIELD_GROUP.get(key)
        if key in GROUPS or group is None:
            if key in GROUPS and isinstance(value, BaseModel):
                value = value.model_dump()
            if key in GROUPS and isinstance(value, dict):
                out.setdefault(key, {}).update(value)
            else:
                out[key] = value
        else:
            out.setdefault(group, {})[key] = value
    return out


class PipelineSettings(BaseSettings):
    """Everything the pipeline needs to know before Dagster loads the definitions."""

    model_config = SettingsConfigDict(extra="forbid", frozen=True)

    seed: int = Field(42, ge=0, description="synthetic panel and training seed")
    data: DataSettings = DataSettings()
    model: ModelSettings = ModelSettings()
    evaluation: EvaluationSettings = EvaluationSettings()
    storage: StorageSettings = StorageSettings()
    runtime: RuntimeSettings = RuntimeSettings()

    def __init__(self, **values: Any) -> None:
        super().__init__(**_route_flat(values))

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ):
        given = _GIVEN_ENVIRONMENT.get()
        if given is not None:
            return init_settings, _FlatEnvironment(settings_cls, dict(given))
        dotenv = env_file()
        from_file = dotenv_values(dotenv) if dotenv.is_file() else {}
        return (
            init_settings,
            _FlatEnvironment(settings_cls, dict(os.environ)),
            _FlatEnvironment(settings_cls, dict(from_file)),
        )

    @model_validator(mode="after")
    def _consistent(self) -> PipelineSettings:
        data = self.data
        try:
            pd.Timestamp(data.start)
        except ValueError as exc:
            raise ValueError(
                f"{ENV_PREFIX}START={data.start!r} is not a date (YYYY-MM-DD)"
            ) from exc
        if self.model.latent_dim >= data.n_names and data.source == "synthetic":
            raise ValueError(
                f"{ENV_PREFIX}LATENT={self.model.latent_dim} must be below "
                f"{ENV_PREFIX}N_NAMES={data.n_names}"
            )
        _engine_installed(self.runtime.executor)
        if data.source == "csv" and data.prices_path is None:
            raise ValueError(f"source=csv needs {ENV_PREFIX}PRICES (a CSV or Parquet file)")
        if data.source == "yfinance" and not (data.tickers or data.universe_path):
            raise ValueError(
                f"source=yfinance needs {ENV_PREFIX}TICKERS (comma-separated) or "
                f"{ENV_PREFIX}UNIVERSE (a CSV with a ticker column)"
            )
        return self

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> PipelineSettings:
        """The environment's settings (``VAE_PIPELINE_*`` and ``.env``; only ``environ`` when
        given) with ``overrides``; raises ``ValueError`` naming each bad variable."""
        token = _GIVEN_ENVIRONMENT.set(environ)
        try:
            return cls(**overrides)
        except ValidationError as exc:
            problems = "; ".join(_describe(e) for e in exc.errors())
            raise ValueError(f"invalid vae_pipeline configuration: {problems}") from None
        finally:
            _GIVEN_ENVIRONMENT.reset(token)

    def with_values(self, **flat: Any) -> PipelineSettings:
        """A copy with some fields replaced, by field name (``with_values(epochs=30)``),
        validated again (environment and ``.env`` are not read a second time)."""
        current = {name: getattr(self, name).model_dump() for name in GROUPS}
        merged = _route_flat({**current, "seed": self.seed})
        for group, values in _route_flat(flat).items():
            if group in GROUPS:
                merged[group].update(values)
            else:
                merged[group] = values
        return type(self).model_validate(merged)

    def cleaning(self):
        """The cleaning thresholds as a ``core.cleaning.CleaningConfig`` (W = the window)."""
        from vae_pipeline.core.cleaning import CleaningConfig

        d = self.data
        return CleaningConfig(
            window=self.evaluation.window,
            min_coverage=d.min_coverage,
            max_fill_run=d.max_fill_run,
            stale_days=d.stale_days,
            split_move=d.split_move,
            split_tolerance=d.split_tolerance,
            max_move=d.max_move,
            winsor_low=d.winsor_low,
            winsor_high=d.winsor_high,
        )


def _engine_installed(executor: str) -> None:
    """The distributed executors (``k8s``, ``celery``, ``dask``) are optional extras: a missing
    one fails here, at load, in one line, instead of deep in the definitions (or never: a run
    must not quietly execute in-process)."""
    if executor in ("in_process", "multiprocess"):
        return
    try:
        importlib.import_module(f"dagster_{executor}")
    except ImportError as exc:
        raise ValueError(
            f"{ENV_PREFIX}EXECUTOR={executor} needs dagster-{executor} ({exc}): "
            f"pip install 'vae_pipeline[{executor}]'"
        ) from None


def _describe(error: dict) -> str:
    """One validation error as 'VAE_PIPELINE_NAME: message' (or the bare message)."""
    message = error["msg"].removeprefix("Value error, ")
    loc = tuple(str(part) for part in error["loc"])
    if not loc:
        return message
    if len(loc) >= 2 and loc[0] in GROUPS:
        variable = ENV_NAMES.get((loc[0], loc[1]))
    else:
        variable = ENV_NAMES.get((None, loc[0]))
    return f"{variable or '.'.join(loc)}: {message}"
