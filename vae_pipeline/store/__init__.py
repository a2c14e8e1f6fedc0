"""The one store: every read and write of the pipeline's data goes through this package.

- :mod:`.connection`: opening the DuckDB file (the only ``duckdb.connect`` of the package);
- :mod:`.schemas`: the columns of every table, declared once;
- :mod:`.base`, :mod:`.duckdb_store`, :mod:`.parquet_store`: the backend abstraction and its
  two implementations (one DuckDB file, or Parquet files under a folder or fsspec URL);
- :mod:`.frame_cache`: frames read from the DuckDB file kept per process while it is unchanged;
- :mod:`.windows`: trailing windows of the ingest tables; :mod:`.models`: trained models;
- :mod:`.factory`: settings -> store.
"""

from vae_pipeline.store.base import Span, Store, StoreError
from vae_pipeline.store.duckdb_store import DuckDBStore
from vae_pipeline.store.factory import open_store, store_for
from vae_pipeline.store.models import ModelStore
from vae_pipeline.store.parquet_store import ParquetStore
from vae_pipeline.store.windows import WindowReader

__all__ = [
    "DuckDBStore", "ModelStore", "ParquetStore", "Span", "Store", "StoreError",
    "WindowReader", "open_store", "store_for",
]  # fmt: skip
