"""Storage that several workers share: one Parquet file per asset partition (Dagster layer).

The DuckDB file is single-writer: one process at a time may open it, so steps on other
machines (k8s, celery, dask executors) cannot use it. Here every partition of every asset is
its own file, ``{root}/{asset}/{YYYY-MM-DD}.parquet`` (``{root}/{asset}/all.parquet`` for an
unpartitioned one), so any number of writers work at once with no lock. ``root`` is a local
folder or any fsspec URL: ``s3://bucket/vae`` with the ``s3`` extra (s3fs), ``gs://``, ``az://``.
A file is written under a temporary name and renamed (atomic on a local or network file
system; an object-store PUT is atomic by itself), so a killed writer leaves the old partition
or the new one, never half a file. DuckDB still reads the tables:
``select * from read_parquet('{root}/raw_returns/*.parquet')``.

Chosen with ``VAE_PIPELINE_IO=parquet`` and ``VAE_PIPELINE_PARQUET_ROOT`` (default
``data/parquet``); the DuckDB file stays the default.
"""

from __future__ import annotations

import os
import uuid

import fsspec
import pandas as pd
from dagster import ConfigurableIOManager, InputContext, OutputContext

UNPARTITIONED = "all"


class ParquetIOManager(ConfigurableIOManager):
    """Pandas frames as one Parquet file per asset partition under ``root``."""

    root: str

    def _fs(self):
        fs, base = fsspec.core.url_to_fs(self.root)
        return fs, base.rstrip("/")

    def _folder(self, asset_key) -> str:
        return "/".join([self._fs()[1], *asset_key.path])

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        if obj is None:
            return
        fs, _ = self._fs()
        folder = self._folder(context.asset_key)
        fs.makedirs(folder, exist_ok=True)
        if not context.has_asset_partitions:
            parts = {UNPARTITIONED: obj}
        elif context.has_partition_key:
            parts = {context.partition_key: obj}
        else:  # a range run (single-run backfill): one file per day of the range
            days = pd.to_datetime(obj["date"]).dt.strftime("%Y-%m-%d")
            parts = {key: obj[days == key] for key in context.asset_partition_keys}
            parts = {key: frame for key, frame in parts.items() if len(frame)}
        for key, frame in parts.items():
            final = f"{folder}/{key}.parquet"
            staging = f"{folder}/.{key}.{uuid.uuid4().hex}.tmp"
            with fs.open(staging, "wb") as f:
                frame.reset_index(drop=True).to_parquet(f, index=False)
            fs.mv(staging, final)
        context.add_output_metadata({"files": len(parts), "folder": folder})

    def load_input(self, context: InputContext) -> pd.DataFrame:
        fs, _ = self._fs()
        folder = self._folder(context.asset_key)
        if not fs.exists(folder):
            return pd.DataFrame()  # nothing stored yet: the reading asset's gate says so
        stored = {
            os.path.basename(p)[: -len(".parquet")]
            for p in fs.ls(folder, detail=False)
            if p.endswith(".parquet")
        }
        wanted = context.asset_partition_keys if context.has_asset_partitions else [UNPARTITIONED]
        frames = []
        for key in sorted(set(wanted) & stored):
            with fs.open(f"{folder}/{key}.parquet", "rb") as f:
                frames.append(pd.read_parquet(f))
        frames = [f for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def io_manager_for(settings):
    """The IO manager ``settings.storage.io`` names: ``duckdb`` (default) or ``parquet``."""
    from vae_pipeline.pipeline.io_managers import VaeDuckDBIOManager

    if settings.storage.io == "parquet":
        return ParquetIOManager(root=settings.storage.parquet_root)
    return VaeDuckDBIOManager(database=str(settings.storage.db_path), schema="main")
