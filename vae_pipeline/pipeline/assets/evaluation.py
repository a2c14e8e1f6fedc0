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
    Failure,
    Output,
    asset,
)

from vae_pipeline.core.calendar import shift_trading_days
from vae_pipeline.core.horse_race import summarise_scorecards
from vae_pipeline.core.refit import score_decision
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
from vae_pipeline.pipeline.partitions import decision_lag
from vae_pipeline.pipeline.resources import TrainingResource
from vae_pipeline.pipeline.window_store import WindowStore

SCORECARD_COLUMNS = ["decision_date", "estimator", "realised_vol", "predicted_vol", "n_days"]


def build(partitions, settings) -> list:
    lag_in = AssetIn(partition_mapping=decision_lag(settings))

    @asset(
        partitions_def=partitions,
        group_name="evaluation",
        metadata=PARTITION_COLUMN,
        ins={"covariance_estimates": lag_in},
        deps=window_deps(decision_lag(settings), "raw_returns"),
        check_specs=gate_specs(
            "minvar_scorecard", ["every_estimator_scored"], warn=["vae_beats_ledoit_wolf"]
        ),
        output_required=False,
        pool=DUCKDB_POOL,
    )
    def minvar_scorecard(
        context: AssetExecutionContext,
        training: TrainingResource,
        store: WindowStore,
        covariance_estimates: pd.DataFrame,
    ):
        """Out-of-sample score of the min-variance decision made H trading days earlier: each
        estimator's realised annualised vol over (d-H, d] beside the vol it predicted."""
        if (skipped := non_trading_day_results(context)) is not None:
            yield from skipped
            return
        day = partition_day(context)
        decision = shift_trading_days(day, -settings.evaluation.horizon)
        weights = covariance_estimates[pd.to_datetime(covariance_estimates["date"]) == decision]
        if weights.empty:
            raise Failure(
                f"no covariance_estimates stored for the decision date {decision:%Y-%m-%d} "
                f"(= {day:%Y-%m-%d} - {settings.evaluation.horizon} trading days): materialise that partition first",
            )
        held = store.returns(
            day, settings.evaluation.horizon
        )  # what is stored of the H days (d-H, d]
        scores = score_decision(weights, held).assign(decision_date=decision)
        expected = set(weights["estimator"])
        scored = set(scores.loc[np.isfinite(scores["realised_vol"]), "estimator"])
        problems = {
            "every_estimator_scored": [f"not scored: {sorted(expected - scored)}"]
            if expected - scored
            else []
        }
        if len(held) < settings.evaluation.horizon:
            problems["every_estimator_scored"].append(
                f"only {len(held)} of {settings.evaluation.horizon} holding days stored"
            )
        vol = scores.set_index("estimator")["realised_vol"]
        warn = {}
        if {"vae", "ledoit_wolf"} <= set(vol.index):
            warn["vae_beats_ledoit_wolf"] = (
                [f"vae {vol['vae']:.4f} > ledoit_wolf {vol['ledoit_wolf']:.4f}"]
                if vol["vae"] > vol["ledoit_wolf"]
                else []
            )
        metadata = {
            "decision_date": str(decision.date()),
            "scorecard": markdown_table(scores.sort_values("realised_vol")),
            **{f"vol_{k}": float(v) for k, v in vol.items()},
        }
        yield from gate(
            context, with_date(scores, day, SCORECARD_COLUMNS), problems, metadata, warnings=warn
        )

    @asset(
        group_name="evaluation",
        ins={"minvar_scorecard": AssetIn()},
        pool=DUCKDB_POOL,
        check_specs=gate_specs("horse_race", [], warn=["vae_beats_ledoit_wolf"]),
    )
    def horse_race(context: AssetExecutionContext, minvar_scorecard: pd.DataFrame):
        """Walk-forward summary over every scored partition: mean and RMS realised vol per
        estimator, gap to the oracle, and the mean difference to Ledoit-Wolf and PCA with a
        95 % interval from non-overlapping holding periods."""
        summary = summarise_scorecards(minvar_scorecard, horizon=settings.evaluation.horizon)
        scored = int(minvar_scorecard["date"].nunique()) if len(minvar_scorecard) else 0
        yield Output(
            summary,
            metadata={
                "scored_partitions": scored,
                "horse_race": markdown_table(summary),
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
