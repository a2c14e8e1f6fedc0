"""Materialise one trading day end to end, the way ``make run`` does (Dagster layer).

Three runs, each visible in the Dagster UI when an instance is given:
1. the ``raw_returns`` / ``market_observables`` history the windows need, as one
   single-run backfill;
2. the decision chain (models and covariances) of d-H, which partition d scores;
3. the whole graph for d, the ``report`` asset (an HTML page under the DuckDB file's
   folder) included; :func:`report_path` finds the page in the run's results.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from dagster import AssetKey, DagsterInstance, Definitions

from vae_pipeline.core.calendar import shift_trading_days
from vae_pipeline.pipeline.assets.models import MODEL_KEYS, model_asset_name
from vae_pipeline.pipeline.assets.report import ON_DEMAND
from vae_pipeline.pipeline.assets.truth import NAME as TRUTH
from vae_pipeline.settings import PipelineSettings

HISTORY_ASSETS = ["raw_returns", "market_observables"]
DECISION_ASSETS = [
    "standardised_panel",
    *(model_asset_name(key) for key in MODEL_KEYS),
    "covariance_estimates",
]
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def history_start(day: pd.Timestamp, settings: PipelineSettings) -> pd.Timestamp:
    """First day of raw history partition d needs: the window of d-H, plus the holding period."""
    first = shift_trading_days(day, -(settings.evaluation.window + settings.evaluation.horizon))
    return max(first, pd.Timestamp(settings.data.start))


def materialise_day(
    defs: Definitions,
    day: str | pd.Timestamp,
    settings: PipelineSettings,
    instance: DagsterInstance | None = None,
    run_config: dict | None = None,
) -> list:
    """Run the three steps for trading day ``day``; returns the run results (raises on failure)."""
    day = pd.Timestamp(day)
    key = f"{day:%Y-%m-%d}"
    decision = f"{shift_trading_days(day, -settings.evaluation.horizon):%Y-%m-%d}"
    job = defs.resolve_implicit_global_asset_job_def()
    existing = defs.resolve_asset_graph().get_all_asset_keys()
    keys = lambda names: [AssetKey(n) for n in names if AssetKey(n) in existing]  # noqa: E731
    all_keys = [
        k for k in defs.resolve_asset_graph().get_all_asset_keys() if k.path[-1] not in ON_DEMAND
    ]
    results = [
        job.execute_in_process(
            instance=instance,
            asset_selection=keys(HISTORY_ASSETS),
            tags={RANGE_START_TAG: f"{history_start(day, settings):%Y-%m-%d}", RANGE_END_TAG: key},
        ),
        job.execute_in_process(
            instance=instance,
            asset_selection=keys([TRUTH, *DECISION_ASSETS]),  # truth: synthetic only
            partition_key=decision,
            run_config=run_config,
        ),
        job.execute_in_process(
            instance=instance, asset_selection=all_keys, partition_key=key, run_config=run_config
        ),
    ]
    return results


def report_path(results: list) -> Path | None:
    """The report page written by these runs (the ``report`` asset's ``report_path``)."""
    for result in reversed(results):
        for event in result.get_asset_materialization_events():
            mat = event.materialization
            if mat.asset_key == AssetKey("report") and "report_path" in mat.metadata:
                return Path(mat.metadata["report_path"].value)
    return None
