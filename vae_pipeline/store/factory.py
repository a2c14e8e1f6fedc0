"""Settings -> store: the one function that knows where the configured storage is.

Every front-end (the Dagster definitions, the CLI, the dashboard, the report) asks
:func:`store_for` instead of reading paths or environment variables itself.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from vae_pipeline.store.base import Store
from vae_pipeline.store.duckdb_store import DuckDBStore
from vae_pipeline.store.parquet_store import ParquetStore

DEFAULT_PARQUET_ROOT = "data/parquet"


@dataclass(frozen=True)
class StorageConfig:
    """The storage group of the settings: which backend, and where."""

    db_path: Path
    io: str = "duckdb"  # "duckdb" | "parquet"
    parquet_root: str = DEFAULT_PARQUET_ROOT
    cache_mb: int = 512


def storage_config(settings) -> StorageConfig:
    """The storage group of ``settings``.

    TODO(settings): once ``vae_pipeline.settings`` has its nested groups, this reads only
    ``settings.storage.db_path``, ``.io``, ``.parquet_root`` and ``.cache_mb``; until then it
    takes ``settings.db_path`` and the two variables that exist today, ``VAE_PIPELINE_IO`` and
    ``VAE_PIPELINE_PARQUET_ROOT`` (the one place the store looks at the environment)."""
    group = getattr(settings, "storage", None)
    if group is not None:
        return StorageConfig(
            db_path=Path(group.db_path),
            io=str(group.io),
            parquet_root=str(group.parquet_root),
            cache_mb=int(group.cache_mb),
        )
    io = os.environ.get("VAE_PIPELINE_IO", "").strip().lower() or "duckdb"
    root = os.environ.get("VAE_PIPELINE_PARQUET_ROOT", "").strip() or DEFAULT_PARQUET_ROOT
    return StorageConfig(db_path=Path(settings.db_path), io=io, parquet_root=root)


def open_store(config: StorageConfig, read_only: bool = False, lock_wait: float | None = None) -> Store:
    """The store ``config`` names (``read_only``: short read-only connections, for readers
    outside the pipeline such as the dashboard and the CLI)."""
    if config.io == "parquet":
        return ParquetStore(config.parquet_root)
    if config.io != "duckdb":
        raise ValueError(f"VAE_PIPELINE_IO={config.io!r}: choose duckdb or parquet")
    extra = {} if lock_wait is None else {"lock_wait": lock_wait}
    return DuckDBStore(config.db_path, cache_mb=config.cache_mb, read_only=read_only, **extra)


def store_for(settings, read_only: bool = False, lock_wait: float | None = None) -> Store:
    """The configured store of ``settings``."""
    return open_store(storage_config(settings), read_only=read_only, lock_wait=lock_wait)
