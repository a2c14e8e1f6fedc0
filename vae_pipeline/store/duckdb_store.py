"""The DuckDB backend: one file, one table per asset, one transaction per write.

A partition is replaced by DELETE + INSERT inside one transaction, so a run killed between
them leaves the old rows (dagster-duckdb's own IO manager runs them as two auto-committed
statements: a kill in between would leave the partition empty).

Each read or write ATTACHes the file to one in-memory DuckDB connection kept per process and
DETACHes it afterwards: DuckDB's file lock is held exactly as long as with connect/close (other
processes, the dashboard included, still get the file between two steps), but attaching costs
~2 ms where opening a connection costs ~10 ms, and a detach after a read ~0.3 ms where a close
costs ~3 ms. A read-only store (the dashboard, the CLI) opens short read-only connections.

Reads go through the process's :data:`~vae_pipeline.store.frame_cache.FRAMES`: a slice already
read is served from memory while the file is unchanged, and every write re-stamps or drops the
entries it affects (see :mod:`vae_pipeline.store.frame_cache`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from vae_pipeline.store import connection
from vae_pipeline.store.base import Span, Store
from vae_pipeline.store.frame_cache import FRAMES, Signature, file_signature
from vae_pipeline.store.schemas import conform, normalise, schema_of

# The attached file's catalog name on the per-process host connection.
ALIAS = "vae_store"
_HOSTS: dict[str, duckdb.DuckDBPyConnection] = {}
_HOST_LOCK = threading.RLock()
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Session:
    """One transaction on the file, with its signature before it and after it committed."""

    conn: duckdb.DuckDBPyConnection
    before: Signature
    after: Signature | None = None


def _sql_string(path: str | Path) -> str:
    """``path`` as a SQL string literal: ATTACH takes no bound parameters, so the path (config,
    never row data) is quoted here, single quotes doubled, NUL refused."""
    text = str(path)
    if "\x00" in text:
        raise connection.DatabaseFileError(f"{text!r}: a NUL byte in the database path")
    return "'" + text.replace("'", "''") + "'"


def _sql(template: str, table: str) -> str:
    """``template`` with ``{table}`` replaced by ``main."table"``: the one place an identifier
    enters SQL. Table names are asset names (never row data), checked to be plain identifiers;
    every value is a bound parameter."""
    if not _IDENTIFIER.match(table):
        raise ValueError(f"{table!r} is not a table name")
    return template.format(table=f'main."{table}"')


@contextmanager
def _opened(database: str, config: dict) -> Iterator[duckdb.DuckDBPyConnection]:
    """The file, attached to this process's host connection for the duration of the block.

    Anything unusual (another connection of this process has the file open, another process
    holds the lock, a corrupt or foreign file) falls back to :func:`connection.connect`,
    which joins the open instance, waits out the lock or reports the file."""
    with _HOST_LOCK:
        key = repr(sorted(config.items()))
        host = _HOSTS.get(key)
        if host is None:
            host = _HOSTS[key] = connection.memory_host(config)
        attach = "ATTACH " + _sql_string(database) + " AS " + ALIAS  # no bound parameters here
        try:
            host.execute(attach)
        except duckdb.Error:
            conn = connection.connect(database, config=config)
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


def table_exists(conn, table: str, schema: str = "main") -> bool:
    return bool(
        conn.execute(
            "select count(*) from information_schema.tables "
            "where table_catalog = current_database() and table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
    )


class DuckDBStore(Store):
    """The asset tables in one DuckDB file."""

    inline_blobs = True

    def __init__(
        self,
        path: str | Path,
        cache_mb: int = 512,
        read_only: bool = False,
        connection_config: dict | None = None,
        lock_wait: float = connection.LOCK_WAIT_SECONDS,
    ) -> None:
        self.path = str(path)
        self.cache_bytes = int(cache_mb) * 2**20
        self.read_only = read_only
        self.config = dict(connection_config or {})
        self.lock_wait = lock_wait

    def describe(self) -> str:
        return self.path

    def exists(self) -> bool:
        return Path(self.path).exists()

    @contextmanager
    def session(self, write: bool = False) -> Iterator[Session]:
        """One transaction (read-write stores) or one short read-only connection."""
        if not self.read_only:
            with transaction(self.path, self.config, write) as session:
                yield session
            return
        if write:
            raise connection.DatabaseFileError(f"{self.path} was opened read-only")
        conn = connection.connect(self.path, read_only=True, lock_wait=self.lock_wait)
        try:
            yield Session(conn, file_signature(self.path), file_signature(self.path))
        finally:
            conn.close()

    def tables(self) -> set[str]:
        if not self.exists():
            return set()
        with self.session() as s:
            rows = s.conn.execute(
                "select table_name from information_schema.tables "
                "where table_catalog = current_database() and table_schema = 'main'"
            ).fetchall()
        return {r[0] for r in rows}

    def read(
        self,
        table: str,
        span: Span | None = None,
        transform: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    ) -> pd.DataFrame:
        if not self.exists():
            return pd.DataFrame()
        key = ("read", table, span, transform)
        if self.cache_bytes > 0 and (found := FRAMES.get(self.path, key)) is not None:
            return found
        with self.session() as s:
            if not table_exists(s.conn, table):
                return pd.DataFrame()
            if span is None:
                frame = s.conn.execute(_sql("select * from {table}", table)).df()
            else:
                frame = s.conn.execute(
                    _sql("select * from {table} where date >= ? and date < ?", table),
                    [span.start.to_pydatetime(), span.end.to_pydatetime()],
                ).df()
        frame = normalise(table, frame)
        if transform is not None and len(frame):
            frame = transform(frame)
        if len(frame):
            FRAMES.put(self.path, key, table, frame, s.before, self.cache_bytes)
        return frame

    def stored_days(self, table: str, span: Span) -> set[pd.Timestamp]:
        """One ``distinct`` query, so a model table's weights are never read."""
        if not self.exists():
            return set()
        with self.session() as s:
            if not table_exists(s.conn, table):
                return set()
            rows = s.conn.execute(
                _sql("select distinct date from {table} where date >= ? and date < ?", table),
                [span.start.to_pydatetime(), span.end.to_pydatetime()],
            ).fetchall()
        return {pd.Timestamp(r[0]).normalize() for r in rows}

    def replace(self, table: str, frame: pd.DataFrame, span: Span | None = None) -> None:
        frame = conform(table, frame)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        with self.session(write=True) as s:
            conn = s.conn
            if table_exists(conn, table):
                if span is None:
                    conn.execute(_sql("delete from {table}", table))
                else:
                    conn.execute(
                        _sql("delete from {table} where date >= ? and date < ?", table),
                        [span.start.to_pydatetime(), span.end.to_pydatetime()],
                    )
            if len(frame):
                self._insert(conn, table, frame)
        FRAMES.wrote(self.path, table, s.before, s.after)

    @staticmethod
    def _insert(conn, table: str, frame: pd.DataFrame) -> None:
        schema = schema_of(table)
        conn.register("incoming_rows", frame)
        try:
            if schema is not None:
                conn.execute(
                    _sql("create table if not exists {table} (" + schema.ddl_columns() + ")", table)
                )
            else:  # undeclared: the frame's own columns
                conn.execute(
                    _sql(
                        "create table if not exists {table} as select * from incoming_rows limit 0",
                        table,
                    )
                )
            conn.execute(_sql("insert into {table} by name select * from incoming_rows", table))
        finally:
            conn.unregister("incoming_rows")
