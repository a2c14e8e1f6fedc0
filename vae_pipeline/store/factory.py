"""Settings -> store: the one function that knows where the configured storage is.

Every front-end (the Dagster definitions, the CLI, the dashboard, the report) asks
:func:`store_for` instead of reading paths or environment variables itself.
"""

from __future__ import annotations

from vae_pipeline.settings import PipelineSettings, StorageSettings
from vae_pipeline.store.base import Store
from vae_pipeline.store.duckdb_store import DuckDBStore
from vae_pipeline.store.parquet_store import ParquetStore


def open_store(
    config: StorageSettings, read_only: bool = False, lock_wait: float | None = None
) -> Store:
    """The store ``config`` (the settings' storage group) names (``read_only``: short
    read-only connections, for readers outside the pipeline such as the dashboard and the CLI)."""
    if config.io == "parquet":
        return ParquetStore(config.parquet_root)
    extra = {} if lock_wait is None else {"lock_wait": lock_wait}
    return DuckDBStore(config.db_path, cache_mb=config.cache_mb, read_only=read_only, **extra)


def store_for(
    settings: PipelineSettings, read_only: bool = False, lock_wait: float | None = None
) -> Store:
    """The configured store of ``settings``."""
    return open_store(settings.storage, read_only=read_only, lock_wait=lock_wait)
