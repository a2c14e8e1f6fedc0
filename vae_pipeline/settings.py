"""Pipeline settings read from the environment (``VAE_PIPELINE_*``), validated once.

Structural settings (the database path, the partitions' start, the window W and the
horizon H that fix the partition mappings) must be known when the definitions are
built, so they live here rather than in run config. ``.env.example`` documents them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

ENV_PREFIX = "VAE_PIPELINE_"

# Field name -> environment variable suffix, where it differs from the upper-cased name.
_ENV_NAMES = {
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


class PipelineSettings(BaseModel):
    """Everything the pipeline needs to know before Dagster loads the definitions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    db_path: Path = Field(Path("data/vae_pipeline.duckdb"), description="the DuckDB file")
    source: Literal["synthetic", "csv", "yfinance"] = "synthetic"
    start: str = Field("2015-01-02", description="first partition (YYYY-MM-DD)")
    kind: Literal["linear", "regime"] = Field("linear", description="synthetic panel kind")
    n_names: int = Field(60, ge=2, le=20000, description="synthetic universe size")
    window: int = Field(504, ge=20, le=5000, description="training window W (trading days)")
    horizon: int = Field(21, ge=1, le=252, description="evaluation horizon H (trading days)")
    latent_dim: int = Field(4, ge=1, le=64)
    beta: float = Field(1.0, ge=0.0, le=100.0)
    epochs: int = Field(300, ge=1, le=100000)
    seed: int = Field(42, ge=0)
    device: str = "auto"
    min_names: int = Field(10, ge=2, description="fewest names a cross-section may hold")
    embedding: Literal["pca", "umap", "auto"] = "pca"
    # Seed each partition's VAE / CVAE with the previous trading day's (a self-dependency of
    # trained_vae / trained_cvae in the graph; see core.warm_start and benchmarks/warm_start.py).
    warm_start: bool = Field(False, description="warm-start refits from the previous partition")
    prices_path: Path | None = None
    sectors_path: Path | None = None
    # Real data (issue 4): observables files, the yfinance universe, the download cache.
    factors_path: Path | None = Field(None, description="French-style daily factors CSV")
    macro_path: Path | None = Field(None, description="CSV with vix and a term spread")
    market_path: Path | None = Field(None, description="CSV of a market index level")
    tickers: str | None = Field(None, description="yfinance tickers, comma-separated")
    universe_path: Path | None = Field(None, description="yfinance universe CSV (ticker[,sector])")
    cache_path: Path | None = Field(None, description="DuckDB file of raw downloads (default: db)")
    fetch_retries: int = Field(4, ge=1, le=20, description="attempts per download")
    # Cleaning (core.cleaning): coverage, stale prices, vendor glitches, winsorisation.
    min_coverage: float = Field(1.0, gt=0.0, le=1.0, description="genuine-return share of W")
    max_fill_run: int = Field(5, ge=0, le=252, description="longest hole filled with 0")
    stale_days: int = Field(5, ge=0, le=252, description="zero-return run that is stale (0 off)")
    split_move: float = Field(1.8, gt=1.0, description="price factor opening a reversed pair")
    split_tolerance: float = Field(0.1, ge=0.0, le=1.0, description="reversal tolerance")
    max_move: float = Field(4.0, gt=1.0, description="price factor of an absurd single day")
    winsor_low: float = Field(-0.75, ge=-0.95, lt=0.0, description="lowest stored return")
    winsor_high: float = Field(1.0, gt=0.0, le=1.0, description="highest stored return")

    @model_validator(mode="after")
    def _check(self) -> PipelineSettings:
        import pandas as pd

        try:
            pd.Timestamp(self.start)
        except ValueError as exc:
            raise ValueError(f"start={self.start!r} is not a date (YYYY-MM-DD)") from exc
        if self.latent_dim >= self.n_names and self.source == "synthetic":
            raise ValueError(f"latent_dim={self.latent_dim} must be below n_names={self.n_names}")
        if self.source == "csv" and self.prices_path is None:
            raise ValueError(f"source=csv needs {ENV_PREFIX}PRICES (a CSV or Parquet file)")
        if self.source == "yfinance" and not (self.tickers or self.universe_path):
            raise ValueError(
                f"source=yfinance needs {ENV_PREFIX}TICKERS (comma-separated) or "
                f"{ENV_PREFIX}UNIVERSE (a CSV with a ticker column)"
            )
        return self

    def cleaning(self):
        """The cleaning thresholds as a ``core.cleaning.CleaningConfig`` (W = the window)."""
        from vae_pipeline.core.cleaning import CleaningConfig

        return CleaningConfig(
            window=self.window,
            min_coverage=self.min_coverage,
            max_fill_run=self.max_fill_run,
            stale_days=self.stale_days,
            split_move=self.split_move,
            split_tolerance=self.split_tolerance,
            max_move=self.max_move,
            winsor_low=self.winsor_low,
            winsor_high=self.winsor_high,
        )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> PipelineSettings:
        """Read ``VAE_PIPELINE_*`` variables; raise ``ValueError`` naming the bad one."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name in cls.model_fields:
            key = ENV_PREFIX + _ENV_NAMES.get(name, name.upper())
            if environ.get(key, "").strip():
                values[name] = environ[key].strip()
        values.update(overrides)
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = "; ".join(_describe(e) for e in exc.errors())
            raise ValueError(f"invalid vae_pipeline configuration: {problems}") from None

    @property
    def window_weekdays(self) -> int:
        """Weekday partitions spanned by W trading days, with room for holidays."""
        return self.window + self.window // 20 + 5

    @property
    def horizon_weekdays(self) -> int:
        """Weekday partitions spanned by H trading days, with room for holidays."""
        return self.horizon + self.horizon // 20 + 5


def _describe(error: dict) -> str:
    """One validation error as 'VAE_PIPELINE_NAME: message' (or the bare message)."""
    if not error["loc"]:
        return error["msg"].removeprefix("Value error, ")
    name = str(error["loc"][0])
    return f"{ENV_PREFIX}{_ENV_NAMES.get(name, name.upper())}: {error['msg']}"
