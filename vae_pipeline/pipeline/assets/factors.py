"""Factors: latent factor series, what they mean, and the stock map they draw."""

import time

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, asset

from vae_pipeline.core.refit import interpret_factors, latents_wide, stock_maps
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
    missing_input,
    model_of,
    not_stored,
    run_days,
    storage_kind,
    window_deps,
    with_date,
)
from vae_pipeline.pipeline.assets.truth import has_truth, truth_deps
from vae_pipeline.pipeline.checks import (
    DayGate,
    gate_days,
    gate_specs,
    interpretation_problems,
    skipped,
)
from vae_pipeline.pipeline.partitions import training_window
from vae_pipeline.pipeline.resources import DataSourceResource, TrainingResource
from vae_pipeline.pipeline.window_store import WindowStore

LATENT_COLUMNS = ["obs_date", "latent", "value"]
INTERPRETATION_COLUMNS = ["metric", "method", "latent", "target", "value"]
EMBEDDING_COLUMNS = ["ticker", "sector", "x", "y", "method"]


def build(partitions, settings) -> list:
    window = training_window(settings)
    window_days = settings.evaluation.window
    storage = storage_kind(settings)

    @asset(
        partitions_def=partitions,
        group_name="factors",
        metadata=PARTITION_COLUMN,
        ins={"trained_vae": AssetIn(), "standardised_panel": AssetIn()},
        check_specs=gate_specs("latent_factors", ["latents_finite"], partitions=partitions),
        backfill_policy=BackfillPolicy.single_run(),
        output_required=False,
        pool=DUCKDB_POOL,
        kinds={"pytorch", storage, "pandas"},
        owners=OWNERS,
        tags=catalog_tags("analytics"),
    )
    def latent_factors(
        context: AssetExecutionContext,
        training: TrainingResource,
        store: WindowStore,
        trained_vae,
        standardised_panel: pd.DataFrame,
    ):
        """The VAE's posterior-mean factor series over the window (long: obs_date, latent, value)."""
        if not (days := run_days(context)):
            yield from holiday_results(context)
            return
        view, panels, models = store.over(days), by_day(standardised_panel), by_key(trained_vae)
        outcomes = {day: _latents(view, day, panels, models) for day in days}
        yield from gate_days(context, outcomes, pd.concat)

    def _latents(view, day, panels, models) -> DayGate:
        if day not in panels or model_of(models, day) is None:
            return skipped(
                not_stored("standardised_panel" if day not in panels else "trained_vae", day)
            )
        window = view.training_window(day, settings.evaluation.window, panels[day])
        means = model_of(models, day).encode_mean(window)
        names = [f"z{i + 1}" for i in range(means.shape[1])]
        frame = pd.DataFrame(means, index=window.index, columns=names)
        long = (
            frame.rename_axis("obs_date")
            .reset_index()
            .melt("obs_date", var_name="latent", value_name="value")
        )
        problems = [] if np.isfinite(means).all() else ["non-finite posterior means"]
        metadata = {
            "latents": len(names),
            "days": len(frame),
            **{f"std_{n}": float(frame[n].std()) for n in names},
        }
        return DayGate(with_date(long, day, LATENT_COLUMNS), {"latents_finite": problems}, metadata)

    @asset(
        partitions_def=partitions,
        group_name="factors",
        metadata=PARTITION_COLUMN,
        ins={"latent_factors": AssetIn(), "standardised_panel": AssetIn()},
        deps=[*window_deps(window, "market_observables"), *truth_deps(settings)],
        check_specs=gate_specs(
            "factor_interpretation", ["interpretation_valid", HISTORY_CHECK], partitions=partitions
        ),
        backfill_policy=BackfillPolicy.single_run(),
        pool=DUCKDB_POOL,
        output_required=False,
        kinds={"scikitlearn", storage, "pandas"},
        owners=OWNERS,
        tags=catalog_tags("analytics"),
    )
    def factor_interpretation(
        context: AssetExecutionContext,
        training: TrainingResource,
        store: WindowStore,
        source: DataSourceResource,
        latent_factors: pd.DataFrame,
        standardised_panel: pd.DataFrame,
    ):
        """What each latent factor means: its |corr| with the market, the volatility index and
        the macro slope (levels and daily changes); on synthetic data also the R^2 of each true
        factor on all latents, with PCA(k) and factor analysis(k) on the same window beside it.
        Refused when a |corr| or R^2 leaves [0, 1] or a latent lacks its one row per target."""
        if not (days := run_days(context)):
            yield from holiday_results(context)
            return
        view, first = store.over(days), source.first_day()
        panels, latents = by_day(standardised_panel), by_day(latent_factors)
        outcomes = {day: _interpret(view, day, first, panels, latents, training) for day in days}
        yield from gate_days(context, outcomes, pd.concat)

    def _interpret(view, day, first, panels, latents, training) -> DayGate:
        if absent := missing_input(day, standardised_panel=panels, latent_factors=latents):
            return skipped(absent)
        needs = {
            "market_observables": window_days,
            **({"ground_truth": 1} if has_truth(settings) else {}),
        }
        if missing := missing_history(view, day, needs, first):
            return DayGate(problems={HISTORY_CHECK: missing})
        window = view.training_window(day, window_days, panels[day])
        observables = view.observables(day, window_days)
        observables = observables.assign(date=pd.to_datetime(observables["date"])).set_index("date")
        truth = view.ground_truth(day).factor_returns if has_truth(settings) else None
        result = interpret_factors(
            latents_wide(latents[day]),
            window,
            observables.loc[window.index, ["market", "volatility", "macro_slope"]],
            truth.reindex(window.index) if truth is not None else None,
            seed=training.seed,
        )
        summary = result.summary
        metadata = {f"best_abs_corr_{t}": v for t, v in summary.best_abs_corr.items()}
        if result.recovery_r2 is not None:
            metadata["recovery"] = markdown_table(
                result.recovery_r2.rename_axis("factor").reset_index()
            )
            metadata.update({f"recovery_r2_{f}": v for f, v in result.recovery_r2["vae"].items()})
        frame = with_date(result.rows, day, INTERPRETATION_COLUMNS)
        problems = {
            "interpretation_valid": interpretation_problems(frame, latents[day]["latent"]),
            HISTORY_CHECK: [],
        }
        return DayGate(frame, problems, metadata)

    @asset(
        partitions_def=partitions,
        group_name="factors",
        metadata=PARTITION_COLUMN,
        ins={"latent_factors": AssetIn(), "standardised_panel": AssetIn()},
        check_specs=gate_specs("stock_embedding", ["embedding_finite"], partitions=partitions),
        backfill_policy=BackfillPolicy.single_run(),
        output_required=False,
        pool=DUCKDB_POOL,
        kinds={"umap", "scikitlearn", storage},
        owners=OWNERS,
        tags=catalog_tags("analytics"),
    )
    def stock_embedding(
        context: AssetExecutionContext,
        training: TrainingResource,
        source: DataSourceResource,
        store: WindowStore,
        latent_factors: pd.DataFrame,
        standardised_panel: pd.DataFrame,
    ):
        """The stock map: each stock's loadings on the latent factors drawn in 2-D by UMAP
        (``VAE_PIPELINE_EMBEDDING``: umap by default, or pca), with its sector; a UMAP map is
        stored beside the PCA map of the same loadings (the ``method`` column), and the
        metadata gives each one's sector silhouette and the seconds the maps took."""
        if not (days := run_days(context)):
            yield from holiday_results(context)
            return
        view, sectors = store.over(days), source.get().sectors()
        panels, latents = by_day(standardised_panel), by_day(latent_factors)
        outcomes = {day: _embed(view, day, panels, latents, sectors, training) for day in days}
        yield from gate_days(context, outcomes, pd.concat)

    def _embed(view, day, panels, latents, sectors, training) -> DayGate:
        if absent := missing_input(day, standardised_panel=panels, latent_factors=latents):
            return skipped(absent)
        window = view.training_window(day, settings.evaluation.window, panels[day])
        started = time.perf_counter()
        maps = stock_maps(
            latents_wide(latents[day]),
            window,
            sectors,
            method=settings.model.embedding,
            seed=training.seed,
        )
        seconds = time.perf_counter() - started
        # the configured map first, then (for UMAP) its PCA baseline: the method column tells
        # them apart, and the report sets the two silhouettes side by side
        frame = pd.concat(
            [m.coords.rename_axis("ticker").reset_index().assign(method=m.method) for m in maps],
            ignore_index=True,
        )
        finite = np.isfinite(frame[["x", "y"]].to_numpy()).all()
        problems = [] if finite else ["non-finite coordinates"]
        silhouettes = {
            f"silhouette_{m.method}": m.silhouette
            if m.silhouette is not None
            else "n/a (fewer than 2 known sectors)"
            for m in maps
        }
        metadata = {
            "method": maps[0].method,
            "silhouette": silhouettes[f"silhouette_{maps[0].method}"],
            **silhouettes,
            "names": int(len(maps[0].coords)),
            "embed_seconds": round(seconds, 3),
        }
        frame = with_date(frame, day, EMBEDDING_COLUMNS)
        return DayGate(frame, {"embedding_finite": problems}, metadata)

    return [latent_factors, factor_interpretation, stock_embedding]
