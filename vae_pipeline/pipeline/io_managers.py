"""Dagster IO managers over the one store (Dagster's public API only).

- :class:`VaeDuckDBIOManager` / :class:`ParquetIOManager`: pandas frames, one table per asset,
  on the DuckDB file or the Parquet root. A partition (or a partition range of a single-run
  backfill) is replaced atomically: the store deletes the rows of the partitions' time window
  and inserts the new ones in one transaction (DuckDB) or file by file with a rename (Parquet).
  An empty frame stores nothing (it deletes the window's rows, like dagster-duckdb's manager).
  A table never written loads as an empty frame, so the reading asset's gate says what is
  missing.
- :class:`ModelIOManager`: the model assets' ``TrainResult`` objects through
  :class:`~vae_pipeline.store.models.ModelStore`. An input gets one ``TrainResult`` (None when
  the partition holds no model: a holiday), or, when its ``AssetIn`` has the metadata
  ``{"partitions": "dict"}`` (a range: the warm start's previous week, the anomaly report's
  decision lag) or the run is ranged (a single-run backfill), a dict partition key ->
  ``TrainResult`` of the stored ones. A ranged run's output is such a dict too: the models of
  the range replace its span in one write.

Hand-written rather than dagster-duckdb's ``DuckDBPandasIOManager``: its public class deletes
and inserts as two auto-committed statements (a kill in between empties the partition), and the
hooks to change that live in Dagster's private ``db_io_manager`` module. ``ConfigurableIOManager``
with the store does the same job in a few lines on both backends.
"""

from __future__ import annotations

import pandas as pd
from dagster import ConfigurableIOManager, InputContext, OutputContext
from pydantic import Field

from vae_pipeline.core.training import TrainResult
from vae_pipeline.settings import StorageSettings
from vae_pipeline.store.base import Span, Store
from vae_pipeline.store.duckdb_store import DuckDBStore
from vae_pipeline.store.factory import open_store
from vae_pipeline.store.models import ModelStore
from vae_pipeline.store.parquet_store import ParquetStore

RANGE_METADATA = {"partitions": "dict"}


def partition_span(context: InputContext | OutputContext) -> Span | None:
    """The days of the context's asset partitions (None: an unpartitioned asset).

    The time window, not the key list: Dagster enumerates a range's keys one cron tick at a
    time, while the window is two timestamps."""
    if not context.has_asset_partitions:
        return None
    try:
        return Span.of_window(context.asset_partitions_time_window)
    except Exception:  # not a time-window partitioning: the keys must be days
        keys = sorted(context.asset_partition_keys)
        if not keys:
            return Span.days("1677-09-22", "1677-09-22")  # nothing mapped: an empty span
        return Span.days(keys[0], keys[-1])


def _table(context: InputContext | OutputContext) -> str:
    return context.asset_key.path[-1]


class _TableIOManager(ConfigurableIOManager):
    """Frames in and out of :meth:`store`, one table per asset."""

    def store(self) -> Store:
        raise NotImplementedError

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        if obj is None:
            return
        store, table = self.store(), _table(context)
        if obj.empty:
            context.log.warning(f"{table}: empty frame, no rows stored")
        store.replace(table, obj, partition_span(context))
        context.add_output_metadata(
            {"rows": int(len(obj)), "stored_in": store.describe(), "dagster/row_count": len(obj)}
        )

    def load_input(self, context: InputContext) -> pd.DataFrame:
        return self.store().read(_table(context), partition_span(context))


class VaeDuckDBIOManager(_TableIOManager):
    """Pandas frames in the DuckDB file, each write one transaction, reads cached per process."""

    database: str = Field(description="the DuckDB file")
    cache_mb: int = Field(
        default=512,
        ge=0,
        description="MB of frames read from the file kept per process while it is unchanged "
        "(0: no cache)",
    )
    connection_config: dict = Field(default_factory=dict, description="DuckDB settings")

    def store(self) -> Store:
        return DuckDBStore(self.database, cache_mb=self.cache_mb,
                           connection_config=self.connection_config)  # fmt: skip


class ParquetIOManager(_TableIOManager):
    """Pandas frames as one Parquet file per asset partition under ``root`` (folder or URL)."""

    root: str = Field(description="a local folder or an fsspec URL (s3://, gs://, az://)")

    def store(self) -> Store:
        return ParquetStore(self.root)


class ModelIOManager(ConfigurableIOManager):
    """``TrainResult`` objects of the model assets, on either backend."""

    io: str = Field("duckdb", description="duckdb | parquet")
    database: str = Field("data/vae_pipeline.duckdb", description="the DuckDB file")
    root: str = Field("data/parquet", description="the Parquet root (io=parquet)")
    cache_mb: int = Field(512, ge=0, description="MB of frames cached per process (DuckDB)")

    def models(self) -> ModelStore:
        config = StorageSettings(db_path=self.database, io=self.io, parquet_root=self.root,
                               cache_mb=self.cache_mb)  # fmt: skip
        return ModelStore(open_store(config))

    def handle_output(self, context: OutputContext, obj: TrainResult | dict | None) -> None:
        if obj is None:
            return
        span = partition_span(context)
        if span is None:
            raise ValueError(f"{_table(context)}: models are stored per partition")
        # one model: its partition's (a one-day run, or a range of one day)
        results = obj if isinstance(obj, dict) else {context.asset_partition_key_range.start: obj}
        self.models().save_models(_table(context), results, span)
        context.add_output_metadata({"models": len(results)})

    def load_input(self, context: InputContext) -> TrainResult | dict | None:
        name, span = _table(context), partition_span(context)
        found = self.models().load_models(name, span)
        if (context.definition_metadata or {}).get("partitions") == "dict" or _ranged(context):
            return found
        if len(found) > 1:
            raise ValueError(
                f"{name}: {len(found)} partitions mapped to one input; declare the input with "
                f"metadata {RANGE_METADATA} to receive a dict"
            )
        return next(iter(found.values()), None)


def _ranged(context: InputContext) -> bool:
    """Whether the input maps to more than one partition (a ranged run's own range)."""
    if not context.has_asset_partitions:
        return False
    keys = context.asset_partition_key_range
    return keys.start != keys.end


def io_managers_for(settings) -> dict[str, ConfigurableIOManager]:
    """``io_manager`` (tables) and ``model_io_manager`` (models) of the configured storage."""
    config = settings.storage
    if config.io == "parquet":
        tables: ConfigurableIOManager = ParquetIOManager(root=config.parquet_root)
    elif config.io == "duckdb":
        tables = VaeDuckDBIOManager(database=str(config.db_path), cache_mb=config.cache_mb)
    else:
        raise ValueError(f"VAE_PIPELINE_IO={config.io!r}: choose duckdb or parquet")
    models = ModelIOManager(io=config.io, database=str(config.db_path),
                            root=config.parquet_root, cache_mb=config.cache_mb)  # fmt: skip
    return {"io_manager": tables, "model_io_manager": models}
