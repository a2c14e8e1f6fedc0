"""The Parquet backend: one file per asset partition, for workers that share no DuckDB file.

The DuckDB file is single-writer: one process at a time may open it, so steps on other
machines (k8s, celery, dask executors) cannot use it. Here every partition of every table is
its own file, ``{root}/{table}/{YYYY-MM-DD}.parquet`` (``{root}/{table}/all.parquet`` for an
unpartitioned one), so any number of writers work at once with no lock. ``root`` is a local
folder or any fsspec URL (``s3://bucket/vae`` with s3fs, ``gs://``, ``az://``): fsspec does the
file systems, pyarrow the files. A file is written under a temporary name and renamed (atomic
on a local or network file system; an object-store PUT is atomic by itself), so a killed
writer leaves the old partition or the new one, never half a file. Model weights are files
under ``{root}/{table}/weights/`` (see :mod:`vae_pipeline.store.models`).

Concurrent writers (steps on several workers): writers of different partitions of one table
touch different files; two writers of the same partition each rename a complete file over
it, the last rename wins (a reader sees one whole version). A reader lists the folder, then
opens the files: a partition deleted in between (a writer's span no longer holds that day)
is skipped, as if listed a moment later; a file another writer already deleted is not an
error to the deleter. Folder listings are read afresh each time (fsspec caches the listings
of object stores per instance), so a long-lived process sees other workers' files.

DuckDB still reads the tables: ``select * from read_parquet('{root}/raw_returns/*.parquet')``.
"""

from __future__ import annotations

import posixpath
import uuid
from collections.abc import Callable

import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vae_pipeline.store.base import Span, Store
from vae_pipeline.store.schemas import PARTITION_COLUMN, conform, normalise, schema_of

UNPARTITIONED = "all"
SUFFIX = ".parquet"


class ParquetStore(Store):
    """The asset tables as Parquet files under ``root`` (a folder or an fsspec URL)."""

    inline_blobs = False

    def __init__(self, root: str) -> None:
        self.root = str(root)
        self.fs, base = fsspec.core.url_to_fs(self.root)
        self.base = base.rstrip("/")

    def describe(self) -> str:
        return self.root

    def exists(self) -> bool:
        return self.fs.exists(self.base) and bool(self.tables())

    def _folder(self, table: str) -> str:
        return posixpath.join(self.base, table)

    def _stored_keys(self, table: str) -> set[str]:
        folder = self._folder(table)
        self.fs.invalidate_cache(folder)  # other workers write here: no stale listing
        if not self.fs.exists(folder):
            return set()
        names = (posixpath.basename(p) for p in self.fs.ls(folder, detail=False))
        return {n[: -len(SUFFIX)] for n in names if n.endswith(SUFFIX) and not n.startswith(".")}

    def tables(self) -> set[str]:
        self.fs.invalidate_cache(self.base)
        if not self.fs.exists(self.base):
            return set()
        folders = [p for p in self.fs.ls(self.base, detail=False) if self.fs.isdir(p)]
        return {posixpath.basename(p.rstrip("/")) for p in folders if self._stored_keys(
            posixpath.basename(p.rstrip("/")))}  # fmt: skip

    def _keys_in(self, table: str, span: Span | None) -> list[str]:
        stored = self._stored_keys(table)
        if span is None:
            return sorted(stored)
        lo, hi = f"{span.start:%Y-%m-%d}", f"{span.end:%Y-%m-%d}"
        return sorted(k for k in stored if k != UNPARTITIONED and lo <= k < hi)

    def read(
        self,
        table: str,
        span: Span | None = None,
        transform: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    ) -> pd.DataFrame:
        frames = []
        for key in self._keys_in(table, span):
            try:
                with self.fs.open(posixpath.join(self._folder(table), key + SUFFIX), "rb") as f:
                    frames.append(pq.read_table(f).to_pandas())
            except FileNotFoundError:  # deleted by a writer since the listing
                continue
        frames = [f for f in frames if len(f)]
        if not frames:
            return pd.DataFrame()
        frame = normalise(table, pd.concat(frames, ignore_index=True))
        return transform(frame) if transform is not None else frame

    def replace(self, table: str, frame: pd.DataFrame, span: Span | None = None) -> None:
        frame = conform(table, frame)
        schema = schema_of(table)
        partitioned = PARTITION_COLUMN in frame.columns if schema is None else schema.partitioned
        folder = self._folder(table)
        self.fs.makedirs(folder, exist_ok=True)
        if not partitioned or span is None and not len(frame):
            parts = {UNPARTITIONED: frame} if len(frame) else {}
            doomed = set() if len(frame) else self._stored_keys(table)
        else:
            days = frame[PARTITION_COLUMN].dt.strftime("%Y-%m-%d")
            parts = {key: frame[days == key] for key in sorted(set(days))}
            doomed = set(self._keys_in(table, span)) - set(parts)
        for key, part in parts.items():
            self._write(folder, key, part, schema)
        for key in doomed:  # days of the span the new rows no longer hold
            _remove(self.fs, posixpath.join(folder, key + SUFFIX))

    def _write(self, folder: str, key: str, part: pd.DataFrame, schema) -> None:
        arrow = (
            pa.Table.from_pandas(part, schema=schema.arrow(), preserve_index=False, safe=False)
            if schema is not None
            else pa.Table.from_pandas(part, preserve_index=False)
        )
        final = posixpath.join(folder, key + SUFFIX)
        staging = posixpath.join(folder, f".{key}.{uuid.uuid4().hex}.tmp")
        with self.fs.open(staging, "wb") as f:
            pq.write_table(arrow, f)
        self.fs.mv(staging, final)

    # Weights files, written under a fresh name and never overwritten (see store.models).
    def put_blob(self, path: str, data: bytes) -> None:
        full = posixpath.join(self.base, path)
        self.fs.makedirs(posixpath.dirname(full), exist_ok=True)
        staging = full + f".{uuid.uuid4().hex}.tmp"
        with self.fs.open(staging, "wb") as f:
            f.write(data)
        self.fs.mv(staging, full)

    def get_blob(self, path: str) -> bytes:
        with self.fs.open(posixpath.join(self.base, path), "rb") as f:
            return f.read()

    def delete_blob(self, path: str) -> None:
        _remove(self.fs, posixpath.join(self.base, path))


def _remove(fs, path: str) -> None:
    """Delete ``path``; one already gone (another writer's delete) is not an error."""
    try:
        fs.rm(path)
    except FileNotFoundError:
        pass
