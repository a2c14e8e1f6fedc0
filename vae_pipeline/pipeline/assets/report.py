"""Report: one self-contained HTML page per partition, built from what is stored; and the beta
sweep, the one figure that needs training, as an on-demand asset of its own.

The page lands in ``<db folder or Parquet root>/reports/report_<day>.html`` (plotly.js inlined: it opens
offline), with one small file per figure under ``reports/figures/`` for the Dagster UI. It
reads the store directly (partition-filtered reads of eight tables plus every scored
partition, on either backend); the ``deps`` keep the lineage. It trains nothing.
"""

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetDep,
    AssetExecutionContext,
    AssetIn,
    MaterializeResult,
    MetadataValue,
    asset,
)

from vae_pipeline.core.refit import SWEEP_COLUMNS, sweep_betas
from vae_pipeline.core.training import TrainResult
from vae_pipeline.pipeline.assets.common import (
    DUCKDB_POOL,
    OWNERS,
    PARTITION_COLUMN,
    catalog_tags,
    holiday_results,
    storage_kind,
    table_metadata,
    trading_partition,
    with_date,
)
from vae_pipeline.pipeline.checks import gate, gate_specs, report_problems
from vae_pipeline.pipeline.partitions import evaluation_window
from vae_pipeline.pipeline.window_store import WindowStore
from vae_pipeline.report.build import REQUIRED_SECTIONS, build_report, report_page
from vae_pipeline.report.data import read_partition
from vae_pipeline.report.html import report_file, write_figure_files, write_report
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
# Materialised on request only (it trains one model per beta): never part of the daily refit.
ON_DEMAND = ["beta_sweep"]


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
        check_specs=gate_specs("report", ["report_complete"], partitions=partitions),
        owners=OWNERS,
        tags=catalog_tags("presentation"),
    )
    def report(context: AssetExecutionContext) -> MaterializeResult:
        """The partition's self-contained HTML report (plotly inlined, opens offline): training
        loss, beta trade-off (when a ``beta_sweep`` is stored), latent trajectories,
        latent-observable correlations, true-factor recovery, the UMAP stock map beside the PCA
        one with their sector silhouettes, walk-forward realised vol (oracle included), anomaly
        drawdowns, CVAE regime shift. Reads only what is stored; checked after writing that the
        page holds every section."""
        day = pd.Timestamp(context.partition_key)
        data = read_partition(store_for(settings), day)
        result = build_report(data, seed=settings.seed)
        path = write_report(
            report_file(settings.storage, day),
            report_page(result, lead=f"partition {day:%Y-%m-%d}, source {settings.data.source}"),
        )
        figures = write_figure_files(path.parent / "figures", f"{day:%Y-%m-%d}", result.figures)
        context.log.info(f"report written to {path}")
        problems = report_problems(path, result.figures, REQUIRED_SECTIONS)
        return MaterializeResult(
            check_results=[
                AssetCheckResult(
                    check_name="report_complete",
                    passed=not problems,
                    metadata={
                        "problems": MetadataValue.md(
                            "\n".join(f"- {p}" for p in problems) or "none"
                        ),
                        "sections": len(result.figures),
                        "bytes": path.stat().st_size if path.is_file() else 0,
                    },
                )
            ],
            metadata={
                "report_path": MetadataValue.path(str(path)),
                **{f"figure_{k}": MetadataValue.path(str(p)) for k, p in figures.items()},
                "scorecard": table_metadata(result.tables["scorecard"]),
                **result.numbers,
            },
        )

    @asset(
        partitions_def=partitions,
        group_name="report",
        metadata=PARTITION_COLUMN,
        ins={"trained_vae": AssetIn(), "standardised_panel": AssetIn()},
        output_required=False,
        pool=DUCKDB_POOL,
        kinds={"pytorch", storage_kind(settings)},
        owners=OWNERS,
        tags=catalog_tags("presentation", cadence="on-demand"),
    )
    def beta_sweep(
        context: AssetExecutionContext,
        store: WindowStore,
        trained_vae: TrainResult,
        standardised_panel: pd.DataFrame,
    ):
        """The beta sweep, the fidelity-complexity trade-off of the day's VAE: its config refit at beta in
        {0.01, 0.1, 0.3, 1, 3, 10} on the same window (reconstruction, KL, active latents).
        On demand only: ``dagster asset materialize --select beta_sweep --partition D``."""
        if (day := trading_partition(context)) is None:
            yield from holiday_results(context)
            return
        window = store.training_window(day, settings.evaluation.window, standardised_panel)
        sweep = sweep_betas(
            trained_vae,
            window,
            progress=lambda i, n, b: context.log.info(f"beta sweep {i}/{n}: beta={b:g}"),
        )
        yield from gate(context, with_date(sweep, day, SWEEP_COLUMNS), {},
                        {"sweep": table_metadata(sweep)})  # fmt: skip

    return [report, beta_sweep]
