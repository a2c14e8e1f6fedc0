"""DuckDB storage for every asset: one file, one table per asset, one transaction per write.

dagster-duckdb's IO manager deletes a partition's rows and inserts the new ones as two
auto-committed statements; a run killed between them would leave the partition empty.
Wrapping the connection in a transaction makes a re-materialisation replace the
partition atomically (all old rows or all new rows, never a mix).

Reads go through the process's :data:`~vae_pipeline.store.frame_cache.FRAMES`: a slice already read
(the same-day scaler and models that several assets of a partition load) is served from memory
while the file is unchanged, and every write re-stamps or drops the entries it affects (see
:mod:`vae_pipeline.store.frame_cache`; the returns windows go through it too, see
:mod:`vae_pipeline.pipeline.window_store`).

Each read or write ATTACHes the file to one in-memory DuckDB connection kept per process and
DETACHes it afterwards: DuckDB's file lock is held exactly as long as with connect/close (other
processes, the dashboard included, still get the file between two steps), but attaching costs
~2 ms where opening a connection costs ~10 ms, and a detach after a read ~0.3 ms where a close
costs ~3 ms.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from dagster import InputContext, OutputContext
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler
from dagster_duckdb.io_manager import DuckDbClient
from dagster_duckdb_pandas import DuckDBPandasIOManager, DuckDBPandasTypeHandler
from pydantic import Field

from vae_pipeline.store import connection as storage
from vae_pipeline.store.frame_cache import FRAMES, Signature, file_signature


@dataclass
class Session:
    """One transaction on the file, with its signature before it and after it committed."""

    conn: duckdb.DuckDBPyConnection
    before: Signature
    after: Signature | None = None


# The attached file's catalog name on the per-process host connection.
ALIAS = "vae_store"
_HOSTS: dict[str, duckdb.DuckDBPyConnection] = {}
_HOST_LOCK = threading.RLock()


def _sql_string(path: str | Path) -> str:
    """``path`` as a SQL string literal: ATTACH takes no bound parameters, so the path (config,
    never row data) is quoted here, single quotes doubled, NUL refused."""
    text = str(path)
    if "\x00" in text:
        raise storage.DatabaseFileError(f"{text!r}: a NUL byte in the database path")
    return "'" + text.replace("'", "''") + "'"


@contextmanager
def _opened(database: str, config: dict) -> Iterator[duckdb.DuckDBPyConnection]:
    """The file, attached to this process's host connection for the duration of the block.

    Anything unusual (another connection of this process has the file open, another process
    holds the lock, a corrupt or foreign file) falls back to :func:`vae_pipeline.store.connection.connect`,
    which joins the open instance, waits out the lock or reports the file, as before."""
    with _HOST_LOCK:
        key = repr(sorted(config.items()))
        host = _HOSTS.get(key)
        if host is None:
            host = _HOSTS[key] = duckdb.connect(
                ":memory:", config={**storage.CONNECTION_CONFIG, **config}
            )
        attach = "ATTACH " + _sql_string(database) + " AS " + ALIAS
        try:
            host.execute(attach)
        except duckdb.Error:
            conn = storage.connect(database, config=config)
            try:
                yield conn
            finally:
                conn.close()
            return
        try:
            host.execute("USE vae_store")
            yield host
        finally:
            try:
                host.execute("USE memory")
                host.execute("DETACH vae_store")
            except duckdb.Error:  # never leave the file attached (locked): drop the host
                _HOSTS.pop(key, None)
                host.close()


@contextmanager
def transaction(database: str, config: dict, write: bool) -> Iterator[Session]:
    """The file in one transaction: committed on success, rolled back on any error.

    The file signatures are taken while DuckDB holds its exclusive lock on the file. A write is
    checkpointed before the file is released (the release would checkpoint anyway) so that
    ``after`` is the state the file keeps."""
    # Our own opening instead of the stock client's: it retries only on the file lock, and
    # reports a corrupt or foreign file at once (the stock client retries every I/O error).
    with _opened(database, config) as conn:
        session = Session(conn, file_signature(database))
        conn.execute("BEGIN TRANSACTION")
        try:
            yield session
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        if not write:
            session.after = session.before
        else:
            try:
                conn.execute("CHECKPOINT")
            except duckdb.Error:  # another connection of this process is mid-transaction
                session.after = None
            else:
                session.after = file_signature(database)


class TransactionalDuckDbClient(DuckDbClient):
    """DuckDbClient whose connection commits all of a write or none of it."""

    @staticmethod
    def delete_table_slice(context, table_slice, connection) -> None:
        # The stock client runs DELETE and swallows "no such table"; inside a transaction
        # that error aborts the transaction, so look the table up first (parameterised).
        if table_exists(connection, table_slice.schema, table_slice.table):
            DuckDbClient.delete_table_slice(context, table_slice, connection)

    @staticmethod
    @contextmanager
    def connect(context, table_slice) -> Iterator[duckdb.DuckDBPyConnection]:
        resource = context.resource_config
        database = resource["database"]
        write = isinstance(context, OutputContext)
        with transaction(database, resource.get("connection_config") or {}, write) as session:
            yield session.conn
        if write:
            FRAMES.wrote(database, table_slice.table, session.before, session.after)


def table_exists(connection, schema: str, table: str) -> bool:
    return bool(
        connection.execute(
            "select count(*) from information_schema.tables "
            "where table_catalog = current_database() and table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
    )


class MissingTableAsEmptyHandler(DuckDBPandasTypeHandler):
    """Loads a table that was never written (nothing upstream stored yet) as an empty frame,
    so the reading asset's own gate reports what is missing instead of a catalog error."""

    def load_input(self, context, table_slice, connection) -> pd.DataFrame:
        if not table_exists(connection, table_slice.schema, table_slice.table):
            return pd.DataFrame()
        return super().load_input(context, table_slice, connection)


class CachingDbIOManager(DbIOManager):
    """DbIOManager whose reads are served from the process's frame cache when still exact."""

    def __init__(self, *, cache_bytes: int, connection_config: dict, **kwargs) -> None:
        super().__init__(**kwargs)
        self._cache_bytes = int(cache_bytes)
        self._connection_config = dict(connection_config or {})

    def load_input(self, context: InputContext) -> object:
        load_type = context.dagster_type.typing_type
        if load_type is Any and self._default_load_type is not None:
            load_type = self._default_load_type
        self._check_supported_type(load_type)
        table_slice = self._get_table_slice(context, context.upstream_output)
        key = ("slice", table_slice.table, DuckDbClient.get_select_statement(table_slice))
        if self._cache_bytes > 0 and (found := FRAMES.get(self._database, key)) is not None:
            return found
        with transaction(self._database, self._connection_config, write=False) as session:
            frame = self._resolve_handler(load_type).load_input(context, table_slice, session.conn)
        if len(frame):
            FRAMES.put(self._database, key, table_slice.table, frame, session.before,
                       self._cache_bytes)  # fmt: skip
        return frame


class VaeDuckDBIOManager(DuckDBPandasIOManager):
    """Pandas frames in DuckDB, each write one transaction, reads cached per process."""

    cache_mb: int = Field(
        default=512,
        ge=0,
        description="MB of frames read from the file kept per process while it is unchanged "
        "(0: no cache)",
    )

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [MissingTableAsEmptyHandler()]

    def create_io_manager(self, context) -> DbIOManager:
        return CachingDbIOManager(
            db_client=TransactionalDuckDbClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="VaeDuckDBIOManager",
            cache_bytes=self.cache_mb * 2**20,
            connection_config=self.connection_config,
        )
