"""Risk: every registered estimator's covariance of the window, kept as its min-variance
decision (``core.refit.estimate_decisions``; nothing is trained here)."""

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, asset

from vae_pipeline.core.refit import (
    DECISION_COLUMNS,
    FittedModels,
    estimate_decisions,
    regime_labels,
)
from vae_pipeline.pipeline.assets.common import (
    DUCKDB_POOL,
    HISTORY_CHECK,
    OWNERS,
    PARTITION_COLUMN,
    catalog_tags,
    holiday_results,
    markdown_table,
    missing_history,
    storage_kind,
    trading_partition,
    window_deps,
    with_date,
)
from vae_pipeline.pipeline.assets.models import MODEL_KEYS, model_asset_name
from vae_pipeline.pipeline.assets.truth import has_truth, truth_deps
from vae_pipeline.pipeline.checks import gate, gate_specs
from vae_pipeline.pipeline.partitions import training_window
from vae_pipeline.pipeline.resources import DataSourceResource, TrainingResource
from vae_pipeline.pipeline.window_store import WindowStore

CHECKS = ["covariance_symmetric_psd", "weights_sum_to_one", HISTORY_CHECK]


def build(partitions, settings) -> list:
    window_days = settings.evaluation.window
    needs = {
        "market_observables": window_days,
        **({"ground_truth": 1} if has_truth(settings) else {}),
    }
    models = {model_asset_name(key): key for key in MODEL_KEYS}

    @asset(
        partitions_def=partitions,
        group_name="risk",
        metadata=PARTITION_COLUMN,
        ins={"standardised_panel": AssetIn(), **{name: AssetIn() for name in models}},
        deps=[
            *window_deps(training_window(settings), "market_observables"),
            *truth_deps(settings),
        ],
        check_specs=gate_specs("covariance_estimates", CHECKS, partitions=partitions),
        output_required=False,
        pool=DUCKDB_POOL,
        kinds={"scikitlearn", "pytorch", storage_kind(settings)},
        owners=OWNERS,
        tags=catalog_tags("decision"),
    )
    def covariance_estimates(
        context: AssetExecutionContext,
        training: TrainingResource,
        store: WindowStore,
        source: DataSourceResource,
        standardised_panel: pd.DataFrame,
        **trained,
    ):
        """The day's min-variance decision of every registered covariance estimator: each one's
        global min-variance weights (O(N) rows per estimator, never N x N) with its predicted
        vol. The estimators: sample, Ledoit-Wolf, nonlinear shrinkage, PCA(k), factor
        analysis(k), the VAE variants, the CVAE for today's regime, regime Ledoit-Wolf and, on
        synthetic data, the oracle from ``ground_truth``."""
        if (day := trading_partition(context)) is None:
            yield from holiday_results(context)
            return
        if missing := missing_history(store, day, needs, source.first_day()):
            yield from gate(context, None, {HISTORY_CHECK: missing})
            return
        window = store.training_window(day, window_days, standardised_panel)
        regimes = regime_labels(store.observables(day, window_days), window.index)
        truth = store.ground_truth(day)
        decisions = estimate_decisions(
            window,
            FittedModels({key: trained[name] for name, key in models.items()}),
            regimes,
            k=training.latent_dim,
            oracle=truth.covariance(list(window.columns)) if truth is not None else None,
            seed=training.seed,
        )
        problems = {
            "covariance_symmetric_psd": decisions.psd_problems,
            "weights_sum_to_one": decisions.weight_problems,
            HISTORY_CHECK: [],
        }
        metadata = {
            "estimators": len(decisions.summary),
            "names": window.shape[1],
            "predicted": markdown_table(pd.DataFrame(decisions.summary)),
            **{f"predicted_vol_{r['estimator']}": r["predicted_vol"] for r in decisions.summary},
        }
        frame = with_date(decisions.frame, day, DECISION_COLUMNS)
        yield from gate(context, frame, problems, metadata)

    return [covariance_estimates]
