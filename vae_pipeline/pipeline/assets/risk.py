"""Risk: every estimator's covariance of the window, kept as its min-variance decision."""

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, asset

from vae_pipeline.core.refit import (
    CVAE_MODEL,
    DECISION_COLUMNS,
    VAE_MODEL,
    SiblingWarmStart,
    estimate_decisions,
    fit_models,
    regime_labels,
    training_window_returns,
)
from vae_pipeline.core.training import TrainResult
from vae_pipeline.pipeline.assets.common import (
    DUCKDB_POOL,
    PARTITION_COLUMN,
    markdown_table,
    non_trading_day_results,
    partition_day,
    window_deps,
    with_date,
)
from vae_pipeline.pipeline.checks import gate, gate_specs
from vae_pipeline.pipeline.partitions import training_window
from vae_pipeline.pipeline.resources import DataSourceResource, TrainingResource
from vae_pipeline.pipeline.window_store import WindowStore

COVARIANCE_COLUMNS = DECISION_COLUMNS


def build(partitions, settings) -> list:
    @asset(
        partitions_def=partitions,
        group_name="risk",
        metadata=PARTITION_COLUMN,
        ins={
            "standardised_panel": AssetIn(),
            "trained_vae": AssetIn(),
            "trained_cvae": AssetIn(),
        },
        deps=window_deps(training_window(settings), "market_observables"),
        check_specs=gate_specs(
            "covariance_estimates", ["covariance_symmetric_psd", "weights_sum_to_one"]
        ),
        output_required=False,
        pool=DUCKDB_POOL,
    )
    def covariance_estimates(
        context: AssetExecutionContext,
        training: TrainingResource,
        source: DataSourceResource,
        store: WindowStore,
        standardised_panel: pd.DataFrame,
        trained_vae: TrainResult,
        trained_cvae: TrainResult,
    ):
        """Sample, Ledoit-Wolf, nonlinear shrinkage, PCA(k), factor analysis(k), the VAE (and its
        improved variants), the CVAE for today's regime, regime Ledoit-Wolf and, on synthetic
        data, the oracle: each kept as its global min-variance weights (O(N) rows per estimator,
        never an N x N table) with the predicted portfolio vol."""
        if (skipped := non_trading_day_results(context)) is not None:
            yield from skipped
            return
        day = partition_day(context)
        window = training_window_returns(
            store.returns(day, settings.evaluation.window),
            standardised_panel,
            day,
            settings.evaluation.window,
        )
        tickers = list(window.columns)
        vae, cvae = trained_vae, trained_cvae
        regimes = regime_labels(store.observables(day, settings.evaluation.window), window.index)
        # The learned-noise models (vae_hetero, cvae_hetero) are trained here by the core
        # stage, from the day's stored VAE / CVAE with warm_start, until they are model assets.
        models = fit_models(
            window,
            regimes,
            training.train_config(),
            given={VAE_MODEL: vae, CVAE_MODEL: cvae},
            warm=SiblingWarmStart(training.warm_epochs, training.warm_lr)
            if training.warm_start
            else None,
        )
        hetero_init = "the day's trained_vae / trained_cvae" if training.warm_start else "cold"
        decisions = estimate_decisions(
            window,
            models,
            regimes,
            k=training.latent_dim,
            oracle=source.get().oracle_covariance(day, tickers),
            seed=training.seed,
        )
        frame, summary = decisions.frame, decisions.summary
        psd, weight_problems = decisions.psd_problems, decisions.weight_problems
        problems = {"covariance_symmetric_psd": psd, "weights_sum_to_one": weight_problems}
        metadata = {
            "learned_noise_models_from": hetero_init,
            "estimators": len(summary),
            "names": len(tickers),
            "predicted": markdown_table(pd.DataFrame(summary)),
            **{f"predicted_vol_{r['estimator']}": r["predicted_vol"] for r in summary},
        }
        yield from gate(context, with_date(frame, day, COVARIANCE_COLUMNS), problems, metadata)

    return [covariance_estimates]
