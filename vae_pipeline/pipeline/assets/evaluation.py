"""Evaluation: each decision scored H trading days later, and the roll-up over all of them.

Partition d scores the decision made at d-H on the returns of (d-H, d], so every asset of
partition d is computable at the close of d and the daily job never waits on the future.
"""

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    Output,
    asset,
)

from vae_pipeline.core.calendar import shift_trading_days
from vae_pipeline.core.horse_race import summarise_scorecards
from vae_pipeline.core.refit import score_decision
from vae_pipeline.pipeline.assets.common import (
    DUCKDB_POOL,
    HISTORY_CHECK,
    OWNERS,
    PARTITION_COLUMN,
    by_day,
    catalog_tags,
    fill_command,
    holiday_results,
    missing_history,
    run_days,
    storage_kind,
    table_metadata,
    window_deps,
    with_date,
)
from vae_pipeline.pipeline.checks import DayGate, gate_days, gate_specs
from vae_pipeline.pipeline.partitions import decision_lag
from vae_pipeline.pipeline.resources import DataSourceResource
from vae_pipeline.pipeline.window_store import WindowStore

SCORECARD_COLUMNS = ["decision_date", "estimator", "realised_vol", "predicted_vol", "n_days"]
# What stores a decision: the assets a missing decision date's fill command names.
DECISION_CHAIN = "*covariance_estimates"


NO_WEIGHTS = pd.DataFrame(columns=["date", "estimator"])


def _losing(vol: pd.Series) -> list[str]:
    """The drift alert: the VAE's realised vol above Ledoit-Wolf's."""
    if vol["vae"] > vol["ledoit_wolf"]:
        return [f"vae {vol['vae']:.4f} > ledoit_wolf {vol['ledoit_wolf']:.4f}"]
    return []


def build(partitions, settings) -> list:
    lag_in = AssetIn(partition_mapping=decision_lag(settings))
    horizon = settings.evaluation.horizon

    @asset(
        partitions_def=partitions,
        group_name="evaluation",
        metadata=PARTITION_COLUMN,
        ins={"covariance_estimates": lag_in},
        deps=window_deps(decision_lag(settings), "raw_returns"),
        check_specs=gate_specs(
            "minvar_scorecard",
            ["every_estimator_scored", HISTORY_CHECK],
            warn=["vae_beats_ledoit_wolf"],
            partitions=partitions,
        ),
        backfill_policy=BackfillPolicy.single_run(),
        output_required=False,
        pool=DUCKDB_POOL,
        kinds={storage_kind(settings), "pandas"},
        owners=OWNERS,
        tags=catalog_tags("evaluation"),
    )
    def minvar_scorecard(
        context: AssetExecutionContext,
        store: WindowStore,
        source: DataSourceResource,
        covariance_estimates: pd.DataFrame,
    ):
        """The out-of-sample scorecard of the min-variance decision made H trading days
        earlier: each estimator's realised annualised vol over (d-H, d] beside the vol it
        predicted (the ``scorecard`` table in the metadata, sortable)."""
        if not (days := run_days(context)):
            yield from holiday_results(context)
            return
        view, decided, first = store.over(days), by_day(covariance_estimates), source.first_day()
        outcomes = {day: _score(view, day, first, decided) for day in days}
        yield from gate_days(context, outcomes, pd.concat)

    def _score(view, day, first, decided) -> DayGate:
        decision = shift_trading_days(day, -horizon)
        weights = decided.get(decision, NO_WEIGHTS)
        missing = missing_history(view, day, {"raw_returns": horizon}, first)
        if weights.empty:
            missing.append(
                f"no covariance_estimates stored for the decision date {decision:%Y-%m-%d} "
                f"(= {day:%Y-%m-%d} - {horizon} trading days); fill it with: "
                + fill_command(DECISION_CHAIN, pd.DatetimeIndex([decision]))
            )
        if missing:
            return DayGate(problems={HISTORY_CHECK: missing})
        scores = score_decision(weights, view.returns(day, horizon)).assign(decision_date=decision)
        unscored = set(weights["estimator"]) - set(
            scores.loc[np.isfinite(scores["realised_vol"]), "estimator"]
        )
        vol = scores.set_index("estimator")["realised_vol"]
        problems = {
            "every_estimator_scored": [f"not scored: {sorted(unscored)}"] if unscored else [],
            HISTORY_CHECK: [],
        }
        warn = (
            {"vae_beats_ledoit_wolf": _losing(vol)}
            if {"vae", "ledoit_wolf"} <= set(vol.index)
            else {}
        )
        metadata = {
            "decision_date": str(decision.date()),
            "scorecard": table_metadata(
                scores.sort_values("realised_vol")[["estimator", "realised_vol", "predicted_vol"]]
            ),
            **{f"vol_{k}": float(v) for k, v in vol.items()},
        }
        return DayGate(with_date(scores, day, SCORECARD_COLUMNS), problems, metadata, warn)

    @asset(
        group_name="evaluation",
        ins={"minvar_scorecard": AssetIn()},
        pool=DUCKDB_POOL,
        kinds={storage_kind(settings), "pandas"},
        check_specs=gate_specs("horse_race", [], warn=["vae_beats_ledoit_wolf"]),
        owners=OWNERS,
        tags=catalog_tags("evaluation", cadence="rollup"),
    )
    def horse_race(context: AssetExecutionContext, minvar_scorecard: pd.DataFrame):
        """The walk-forward horse race over every scored partition: mean and RMS realised vol
        per estimator, gap to the oracle, and the mean difference to Ledoit-Wolf and PCA with a
        95 % interval from non-overlapping holding periods (the ``horse_race`` table in the
        metadata, sortable)."""
        summary = summarise_scorecards(minvar_scorecard, horizon=horizon)
        scored = int(minvar_scorecard["date"].nunique()) if len(minvar_scorecard) else 0
        yield Output(
            summary,
            metadata={
                "scored_partitions": scored,
                "horse_race": table_metadata(summary),
                **{f"rms_vol_{r.estimator}": float(r.rms_vol) for r in summary.itertuples()},
            },
        )
        vol = summary.set_index("estimator")["rms_vol"] if len(summary) else pd.Series(dtype=float)
        losing = {"vae", "ledoit_wolf"} <= set(vol.index) and vol["vae"] > vol["ledoit_wolf"]
        yield AssetCheckResult(
            check_name="vae_beats_ledoit_wolf",
            passed=not losing,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "vae_minus_ledoit_wolf": float(
                    vol.get("vae", np.nan) - vol.get("ledoit_wolf", np.nan)
                )
                if len(vol)
                else 0.0
            },
        )

    return [minvar_scorecard, horse_race]
