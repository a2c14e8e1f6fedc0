"""Risk: every registered estimator's covariance of the window, kept as its min-variance
decision (``core.refit.estimate_decisions``; nothing is trained here)."""

import pandas as pd
from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, asset

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
    by_day,
    by_key,
    catalog_tags,
    holiday_results,
    markdown_table,
    missing_history,
    model_of,
    not_stored,
    run_days,
    storage_kind,
    window_deps,
    with_date,
)
from vae_pipeline.pipeline.assets.models import MODEL_KEYS, model_asset_name
from vae_pipeline.pipeline.assets.truth import has_truth, truth_deps
from vae_pipeline.pipeline.checks import DayGate, gate_days, gate_specs, skipped
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
        backfill_policy=BackfillPolicy.single_run(),
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
        if not (days := run_days(context)):
            yield from holiday_results(context)
            return
        view, panels, first = store.over(days), by_day(standardised_panel), source.first_day()
        trained = {name: by_key(found) for name, found in trained.items()}
        outcomes = {day: _one_day(view, day, first, panels, trained, training) for day in days}
        yield from gate_days(context, outcomes, pd.concat)

    def _one_day(view, day, first, panels, trained, training) -> DayGate:
        if day not in panels:
            return skipped(not_stored("standardised_panel", day))
        fitted = {name: model_of(trained[name], day) for name in models}
        if absent := [name for name, found in fitted.items() if found is None]:
            return skipped(not_stored(absent[0], day))
        if missing := missing_history(view, day, needs, first):
            return DayGate(problems={HISTORY_CHECK: missing})
        window = view.training_window(day, window_days, panels[day])
        regimes = regime_labels(view.observables(day, window_days), window.index)
        truth = view.ground_truth(day)
        decisions = estimate_decisions(
            window,
            FittedModels({key: fitted[name] for name, key in models.items()}),
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
        return DayGate(with_date(decisions.frame, day, DECISION_COLUMNS), problems, metadata)

    return [covariance_estimates]
