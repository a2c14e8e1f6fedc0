"""The columns of every asset table, declared once: names, order and types.

Writers conform a frame to its table's schema before storing it (the DuckDB table is created
from it, a Parquet file is written with its Arrow schema) and readers normalise what they get
back, so both backends hand out the same columns in the same order with the same dtypes. Dates
come back as ``datetime64[ns]`` whichever backend (DuckDB's DATE reads as microseconds, a
Parquet ``date32`` as Python dates).

A table not declared here (a test's own asset, say) is stored as the frame is: its columns are
inferred, in the frame's order.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pyarrow as pa

# logical type -> (DuckDB type, Arrow type)
TYPES = {
    "date": ("DATE", pa.date32()),
    "timestamp": ("TIMESTAMP", pa.timestamp("us")),
    "double": ("DOUBLE", pa.float64()),
    "bigint": ("BIGINT", pa.int64()),
    "boolean": ("BOOLEAN", pa.bool_()),
    "varchar": ("VARCHAR", pa.string()),
    "blob": ("BLOB", pa.binary()),
}
PARTITION_COLUMN = "date"


@dataclass(frozen=True)
class TableSchema:
    name: str
    columns: tuple[tuple[str, str], ...]  # (column, logical type), in stored order

    @property
    def names(self) -> list[str]:
        return [c for c, _ in self.columns]

    @property
    def partitioned(self) -> bool:
        return PARTITION_COLUMN in self.names

    def ddl_columns(self) -> str:
        """``"col" TYPE, ...`` (names come from this module, never from data)."""
        return ", ".join(f'"{c}" {TYPES[t][0]}' for c, t in self.columns)

    def arrow(self) -> pa.Schema:
        return pa.schema([(c, TYPES[t][1]) for c, t in self.columns])


def _table(name: str, *columns: str) -> TableSchema:
    return TableSchema(name, tuple(tuple(c.split(":")) for c in columns))


_MODEL = (
    "date:date", "model:varchar", "model_config:varchar", "train_config:varchar",
    "standardiser:varchar", "weights:blob", "weights_ref:varchar", "history:varchar",
    "epochs_run:bigint", "first_loss:double", "final_loss:double", "final_recon:double",
    "final_kl:double", "seconds:double", "device:varchar", "n_conditions:bigint",
)  # fmt: skip

SCHEMAS: dict[str, TableSchema] = {
    s.name: s
    for s in [
        _table("raw_returns", "date:date", "ticker:varchar", "ret:double"),
        _table(
            "market_observables", "date:date", "market:double", "volatility:double",
            "macro_slope:double", "regime:bigint",
        ),
        _table(
            "standardised_panel", "date:date", "ticker:varchar", "mean:double", "scale:double",
            "n_obs:bigint", "z_mean:double", "z_std:double",
        ),
        # weights: the state dict inline (DuckDB); weights_ref: its file under the root (Parquet)
        _table("trained_vae", *_MODEL),
        _table("trained_cvae", *_MODEL),
        # the synthetic panel's truth, long: loadings, variances, planted flags, factor returns
        _table(
            "ground_truth", "date:date", "obs_date:timestamp", "ticker:varchar", "item:varchar",
            "value:double",
        ),
        _table("latent_factors", "date:date", "obs_date:timestamp", "latent:varchar", "value:double"),
        _table(
            "factor_interpretation", "date:date", "metric:varchar", "method:varchar",
            "latent:varchar", "target:varchar", "value:double",
        ),
        _table(
            "stock_embedding", "date:date", "ticker:varchar", "sector:varchar", "x:double",
            "y:double", "method:varchar",
        ),
        _table(
            "covariance_estimates", "date:date", "estimator:varchar", "ticker:varchar",
            "weight:double", "asset_vol:double", "predicted_vol:double", "min_eigenvalue:double",
        ),
        _table(
            "minvar_scorecard", "date:date", "decision_date:timestamp", "estimator:varchar",
            "realised_vol:double", "predicted_vol:double", "n_days:bigint",
        ),
        _table(
            "anomaly_report", "date:date", "ticker:varchar", "recon_error:double",
            "flagged:boolean", "idio_vol:double", "planted:double", "decision_date:timestamp",
            "decision_error:double", "decision_flagged:double", "later_drawdown:double",
            "surprise:double", "decision_surprise:double",
        ),
        _table(
            "beta_sweep", "date:date", "beta:double", "recon:double", "kl:double",
            "active_dims:bigint",
        ),
        _table(
            "horse_race", "estimator:varchar", "n_scored:bigint", "mean_vol:double",
            "rms_vol:double", "gap_to_oracle:double", "diff_vs_ledoit_wolf:double",
            "diff_vs_ledoit_wolf_lo:double", "diff_vs_ledoit_wolf_hi:double",
            "diff_vs_pca:double", "diff_vs_pca_lo:double", "diff_vs_pca_hi:double",
        ),
        # the download cache of sources.fetch (values long, and what was asked)
        _table(
            "download_cache", "provider:varchar", "request:varchar", "date:timestamp",
            "series:varchar", "value:double",
        ),
        _table(
            "download_requests", "provider:varchar", "request:varchar", "fetched_at:timestamp",
            "n_rows:bigint", "complete:boolean",
        ),
    ]
}  # fmt: skip


MODEL_TABLE_PREFIX = "trained_"


def schema_of(table: str) -> TableSchema | None:
    """The declared schema of ``table``; every model asset's table (``trained_*``) shares one."""
    if table not in SCHEMAS and table.startswith(MODEL_TABLE_PREFIX):
        return TableSchema(table, SCHEMAS["trained_vae"].columns)
    return SCHEMAS.get(table)


def conform(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its table's columns in the declared order and dtypes; a column the schema
    does not declare is an error (the frame and the table disagree), a missing one is null."""
    schema = schema_of(table)
    if schema is None:
        return frame.reset_index(drop=True)
    extra = [c for c in frame.columns if c not in schema.names]
    if extra:
        raise ValueError(f"{table}: columns {extra} are not in its declared schema {schema.names}")
    out = frame.reset_index(drop=True).reindex(columns=schema.names)
    for column, kind in schema.columns:
        if kind in ("date", "timestamp"):
            out[column] = pd.to_datetime(out[column]).astype("datetime64[ns]")
            if kind == "date":
                out[column] = out[column].dt.normalize()
    return out


def normalise(table: str, frame: pd.DataFrame) -> pd.DataFrame:
    """A frame as read back: declared order, dates and timestamps as ``datetime64[ns]``."""
    schema = schema_of(table)
    if schema is None or frame.empty and not len(frame.columns):
        return frame
    present = [c for c in schema.names if c in frame.columns]
    out = frame[present + [c for c in frame.columns if c not in present]]
    for column, kind in schema.columns:
        if column in out and kind in ("date", "timestamp"):
            out[column] = pd.to_datetime(out[column]).astype("datetime64[ns]")
    return out
