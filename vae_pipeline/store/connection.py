"""Opening the pipeline's DuckDB file: wait out another process's lock, fail fast otherwise.

The only module of the package that calls ``duckdb.connect``: every other reader and writer
(the store's backends, the download cache) opens the file through :func:`connect` or
:func:`memory_host`, so the lock retry and the clear errors hold everywhere."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

# No extension is ever fetched or auto-loaded: a foreign file (SQLite, say) must not make
# DuckDB reach for the network, and the pipeline needs no extension.
CONNECTION_CONFIG = {"autoinstall_known_extensions": False, "autoload_known_extensions": False}
LOCK_WAIT_SECONDS = 120.0


class DatabaseFileError(RuntimeError):
    """The DuckDB file cannot be used (corrupt, foreign, or still locked after waiting)."""


class MissingDatabaseError(DatabaseFileError, FileNotFoundError):
    """Nothing stored yet: a reader asked for a database file that does not exist."""


def memory_host(config: dict | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection on which the file is ATTACHed per read or write
    (see :mod:`vae_pipeline.store.duckdb_store`: attaching is ~5x cheaper than connecting)."""
    return duckdb.connect(":memory:", config={**CONNECTION_CONFIG, **(config or {})})


def connect(
    path: str | Path,
    read_only: bool = False,
    config: dict | None = None,
    lock_wait: float = LOCK_WAIT_SECONDS,
) -> duckdb.DuckDBPyConnection:
    """Open ``path``; retry only while another process holds its lock (up to ``lock_wait`` s)."""
    if read_only and not Path(path).exists():
        raise MissingDatabaseError(f"no database yet at {path}: run `make run` first")
    config = {**CONNECTION_CONFIG, **(config or {})}
    deadline, delay = time.monotonic() + lock_wait, 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.IOException as exc:
            locked = "lock" in str(exc).lower()
            if locked and time.monotonic() < deadline:
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            hint = (
                "another process kept it locked"
                if locked
                else "it is not a usable vae_pipeline DuckDB database (corrupt, or another program's file); "
                "move it away or point VAE_PIPELINE_DB elsewhere"
            )
            raise DatabaseFileError(f"cannot open {path}: {hint}. DuckDB said: {exc}") from exc
