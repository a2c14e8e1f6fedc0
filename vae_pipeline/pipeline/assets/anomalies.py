"""Anomalies: reconstruction error per stock, and whether yesterday's flags drew down."""

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, AssetIn, BackfillPolicy, asset

from vae_pipeline.core.calendar import shift_trading_days
from vae_pipeline.core.panel import window_panel
from vae_pipeline.core.refit import ANOMALY_REPORT_COLUMNS, evaluate_anomalies
from vae_pipeline.pipeline.assets.common import (
    DUCKDB_POOL,
    HISTORY_CHECK,
    OWNERS,
    PARTITION_COLUMN,
    catalog_tags,
    fill_command,
    holiday_results,
    missing_history,
    not_stored,
    run_days,
    storage_kind,
    window_deps,
    with_date,
)
from vae_pipeline.pipeline.assets.truth import has_truth, truth_deps
from vae_pipeline.pipeline.checks import DayGate, gate_days, gate_specs, skipped
from vae_pipeline.pipeline.io_managers import RANGE_METADATA
from vae_pipeline.pipeline.partitions import decision_lag, evaluation_window
from vae_pipeline.pipeline.resources import DataSourceResource, TrainingResource
from vae_pipeline.pipeline.window_store import WindowStore

ANOMALY_COLUMNS = ["ticker", *ANOMALY_REPORT_COLUMNS]


def build(partitions, settings) -> list:
    # the first partition whose training window lies inside the history: a decision before it
    # never had a model, so its evaluation is skipped rather than refused
    first_model_day = shift_trading_days(settings.data.start, settings.evaluation.window - 1)
    truth_need = {"ground_truth": 1} if has_truth(settings) else {}

    @asset(
        partitions_def=partitions,
        group_name="evaluation",
        metadata=PARTITION_COLUMN,
        ins={
            "trained_vae": AssetIn(
                partition_mapping=decision_lag(settings), metadata=RANGE_METADATA
            )
        },
        deps=[
            *window_deps(evaluation_window(settings), "raw_returns", "market_observables"),
            *truth_deps(settings),
        ],
        check_specs=gate_specs(
            "anomaly_report", ["errors_finite", HISTORY_CHECK], partitions=partitions
        ),
        backfill_policy=BackfillPolicy.single_run(),
        output_required=False,
        pool=DUCKDB_POOL,
        kinds={"pytorch", storage_kind(settings), "pandas"},
        owners=OWNERS,
        tags=catalog_tags("evaluation"),
    )
    def anomaly_report(
        context: AssetExecutionContext,
        training: TrainingResource,
        store: WindowStore,
        source: DataSourceResource,
        trained_vae: dict,
    ):
        """The day's anomaly flags: reconstruction error per stock over the window, the top
        20 % flagged; and the test of the flags made H days earlier: did they draw down more
        over (d-H, d] (market-residual paths), and does the error still predict drawdowns
        given trailing residual vol?"""
        if not (days := run_days(context)):
            yield from holiday_results(context)
            return
        view, first = store.over(days), source.first_day()
        outcomes = {day: _one_day(view, day, first, trained_vae, training) for day in days}
        yield from gate_days(context, outcomes, pd.concat)

    def _one_day(view, day, first, trained_vae: dict, training) -> DayGate:
        if f"{day:%Y-%m-%d}" not in trained_vae:
            return skipped(not_stored("trained_vae", day))
        days = (
            settings.evaluation.window + settings.evaluation.horizon
        )  # the window of d-H and the holding days after it
        decision = shift_trading_days(day, -settings.evaluation.horizon)
        missing = missing_history(
            view, day, {"raw_returns": days, "market_observables": days, **truth_need}, first
        )
        if f"{decision:%Y-%m-%d}" not in trained_vae and decision >= first_model_day:
            missing.append(
                f"no trained_vae stored for the decision date {decision:%Y-%m-%d}; fill it with: "
                + fill_command("*trained_vae", pd.DatetimeIndex([decision]))
            )
        if missing:
            return DayGate(problems={HISTORY_CHECK: missing})
        raw_returns = view.returns(day, days)
        observables = view.observables(day, days)
        market = observables.assign(date=pd.to_datetime(observables["date"])).set_index("date")
        window, problems = window_panel(raw_returns, day, settings.evaluation.window)
        then = {}
        if (key := f"{decision:%Y-%m-%d}") in trained_vae:
            past, past_problems = window_panel(raw_returns, decision, settings.evaluation.window)
            if not past_problems:  # a name missing a held day drops out of the evaluation
                held, _ = window_panel(raw_returns, day, settings.evaluation.horizon)
                then = {"model_then": trained_vae[key], "window_then": past, "held_returns": held}
        truth = view.ground_truth(day) if has_truth(settings) else None
        report = evaluate_anomalies(
            trained_vae[f"{day:%Y-%m-%d}"], window, market["market"],
            planted=truth.planted if truth is not None else None, seed=training.seed, **then,
        )  # fmt: skip
        metadata = report.metadata()
        if report.test is None:
            metadata["evaluation"] = f"none: no model of {decision:%Y-%m-%d} to evaluate"
        frame = report.frame.reset_index()
        errs = (
            [] if np.isfinite(frame["recon_error"]).all() else ["non-finite reconstruction errors"]
        )
        problems = {"errors_finite": errs + problems, HISTORY_CHECK: []}
        return DayGate(with_date(frame, day, ANOMALY_COLUMNS), problems, metadata)

    return [anomaly_report]
