"""Report: one self-contained HTML page per partition, built from the stored tables.

Partitioned like the rest of the graph, so each day's materialisation leaves its own file,
``<db folder>/reports/report_<day>.html`` (plotly.js inlined: it opens offline, no server),
and one small file per figure under ``reports/figures/`` for the Dagster UI's metadata.
It reads DuckDB directly (partition-filtered SQL, one short connection) rather than through
the IO manager, because it needs slices of eight tables plus every scored partition; the
``deps`` keep the lineage. The beta sweep it draws is refit here (a few short fits).
"""

from pathlib import Path

import pandas as pd
from dagster import (
    AssetDep,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset,
)

from vae_pipeline.pipeline.assets.common import DUCKDB_POOL, partition_day
from vae_pipeline.pipeline.partitions import evaluation_window
from vae_pipeline.pipeline.resources import TrainingResource
from vae_pipeline.report.build import build_report, report_page
from vae_pipeline.report.compute import run_beta_sweep
from vae_pipeline.report.data import read_partition
from vae_pipeline.report.html import write_figure_files, write_report
from vae_pipeline.store.factory import store_for

SAME_DAY = [
    "trained_vae",
    "trained_cvae",
    "latent_factors",
    "factor_interpretation",
    "stock_embedding",
    "covariance_estimates",
    "minvar_scorecard",
    "anomaly_report",
]


def report_file(db_path: Path, day) -> Path:
    """Where partition ``day``'s report lands: beside the DuckDB file, under ``reports/``."""
    return Path(db_path).resolve().parent / "reports" / f"report_{pd.Timestamp(day):%Y-%m-%d}.html"


def table_metadata(frame: pd.DataFrame) -> MetadataValue:
    """A small frame as a Dagster table (sortable in the UI)."""
    kinds = {"f": "float", "i": "int", "b": "bool"}
    schema = TableSchema(
        columns=[TableColumn(str(c), kinds.get(frame[c].dtype.kind, "string")) for c in frame]
    )
    records = [
        TableRecord(
            {str(k): (v if not isinstance(v, float) or v == v else None) for k, v in row.items()}
        )
        for row in frame.to_dict(orient="records")
    ]
    return MetadataValue.table(records=records, schema=schema)


def build(partitions, settings) -> list:
    window = evaluation_window(settings)

    @asset(
        partitions_def=partitions,
        group_name="report",
        deps=[
            *SAME_DAY,
            AssetDep("raw_returns", partition_mapping=window),
            AssetDep("market_observables", partition_mapping=window),
            "horse_race",
        ],
        pool=DUCKDB_POOL,
        kinds={"html", "plotly"},
    )
    def report(context: AssetExecutionContext, training: TrainingResource) -> MaterializeResult:
        """Self-contained HTML report of the partition: training loss, beta trade-off, latent
        trajectories, latent-observable correlations, true-factor recovery, stock map,
        walk-forward realised vol (oracle included), anomaly drawdowns, CVAE regime shift."""
        day = partition_day(context)
        # read_only=False: the run's own process may hold the file (DuckDB refuses a second
        # connection with a different configuration); the duckdb pool serialises writers.
        data = read_partition(store_for(settings), day)
        sweep = None
        if "vae" in data.models:
            sweep = run_beta_sweep(
                data.models["vae"],
                data.returns,
                data.latents.index,
                progress=lambda i, n, b: context.log.info(f"beta sweep {i}/{n}: beta={b:g}"),
            )
        result = build_report(data, sweep, seed=training.seed)
        path = write_report(
            report_file(settings.storage.db_path, day),
            report_page(result, lead=f"partition {day:%Y-%m-%d}, source {settings.data.source}"),
        )
        figure_paths = write_figure_files(
            path.parent / "figures", f"{day:%Y-%m-%d}", result.figures
        )
        context.log.info(f"report written to {path}")
        return MaterializeResult(
            metadata={
                "report_path": MetadataValue.path(str(path)),
                "figures": MetadataValue.md(
                    "\n".join(f"- **{k}**: `{p}`" for k, p in figure_paths.items())
                ),
                **{f"figure_{k}": MetadataValue.path(str(p)) for k, p in figure_paths.items()},
                "scorecard": table_metadata(result.tables["scorecard"]),
                **result.numbers,
            }
        )

    return [report]
