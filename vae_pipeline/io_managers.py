"""DuckDB storage for every asset: one file, one table per asset, one transaction per write.

dagster-duckdb's IO manager deletes a partition's rows and inserts the new ones as two
auto-committed statements; a run killed between them would leave the partition empty.
Wrapping the connection in a transaction makes a re-materialisation replace the
partition atomically (all old rows or all new rows, never a mix).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import duckdb
import pandas as pd
from dagster._core.storage.db_io_manager import DbIOManager, DbTypeHandler
from dagster_duckdb.io_manager import DuckDbClient
from dagster_duckdb_pandas import DuckDBPandasIOManager, DuckDBPandasTypeHandler

from vae_pipeline import storage


class TransactionalDuckDbClient(DuckDbClient):
    """DuckDbClient whose connection commits all of a write or none of it."""

    @staticmethod
    def delete_table_slice(context, table_slice, connection) -> None:
        # The stock client runs DELETE and swallows "no such table"; inside a transaction
        # that error aborts the transaction, so look the table up first (parameterised).
        if _table_exists(connection, table_slice.schema, table_slice.table):
            DuckDbClient.delete_table_slice(context, table_slice, connection)

    @staticmethod
    @contextmanager
    def connect(context, table_slice) -> Iterator[duckdb.DuckDBPyConnection]:
        # Our own connect instead of the stock one: it retries only on the file lock, and
        # reports a corrupt or foreign file at once (the stock client retries every I/O
        # error for minutes before giving up).
        resource = context.resource_config
        conn = storage.connect(resource["database"], config=resource.get("connection_config") or {})
        try:
            conn.execute("BEGIN TRANSACTION")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()


def _table_exists(connection, schema: str, table: str) -> bool:
    return bool(
        connection.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [schema, table],
        ).fetchall()[0][0]
    )


class MissingTableAsEmptyHandler(DuckDBPandasTypeHandler):
    """Loads a table that was never written (nothing upstream stored yet) as an empty frame,
    so the reading asset's own gate reports what is missing instead of a catalog error."""

    def load_input(self, context, table_slice, connection) -> pd.DataFrame:
        if not _table_exists(connection, table_slice.schema, table_slice.table):
            return pd.DataFrame()
        return super().load_input(context, table_slice, connection)


class VaeDuckDBIOManager(DuckDBPandasIOManager):
    """Pandas frames in DuckDB, each write one transaction."""

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        return [MissingTableAsEmptyHandler()]

    def create_io_manager(self, context) -> DbIOManager:
        return DbIOManager(
            db_client=TransactionalDuckDbClient(),
            database=self.database,
            schema=self.schema_,
            type_handlers=self.type_handlers(),
            default_load_type=self.default_load_type(),
            io_manager_name="VaeDuckDBIOManager",
        )
