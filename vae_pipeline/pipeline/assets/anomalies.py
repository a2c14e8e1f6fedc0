"""Anomalies: reconstruction error per stock, and whether yesterday's flags drew down."""

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, AssetIn, asset

from vae_pipeline.core.anomaly import (
    anomaly_test,
    flag_anomalies,
    market_residual_returns,
    max_drawdown,
)
from vae_pipeline.core.calendar import shift_trading_days
from vae_pipeline.core.panel import window_panel
from vae_pipeline.core.refit import model_errors
from vae_pipeline.pipeline.assets.common import (
    DUCKDB_POOL,
    HISTORY_CHECK,
    PARTITION_COLUMN,
    fill_command,
    holiday_results,
    missing_history,
    trading_partition,
    window_deps,
    with_date,
)
from vae_pipeline.pipeline.assets.truth import has_truth, truth_deps
from vae_pipeline.pipeline.checks import gate, gate_specs
from vae_pipeline.pipeline.io_managers import RANGE_METADATA
from vae_pipeline.pipeline.partitions import decision_lag, evaluation_window
from vae_pipeline.pipeline.resources import DataSourceResource, TrainingResource
from vae_pipeline.pipeline.window_store import WindowStore

ANOMALY_COLUMNS = [
    "ticker",
    "recon_error",
    "flagged",
    "idio_vol",
    "planted",
    "decision_date",
    "decision_error",
    "decision_flagged",
    "later_drawdown",
]


def build(partitions, settings) -> list:
    # the first partition whose training window lies inside the history: a decision before it
    # never had a model, so its evaluation is skipped rather than refused
    first_model_day = shift_trading_days(settings.data.start, settings.evaluation.window - 1)

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
        check_specs=gate_specs("anomaly_report", ["errors_finite", HISTORY_CHECK]),
        output_required=False,
        pool=DUCKDB_POOL,
        kinds={"pytorch", "duckdb"},
    )
    def anomaly_report(
        context: AssetExecutionContext,
        training: TrainingResource,
        store: WindowStore,
        source: DataSourceResource,
        trained_vae: dict,
    ):
        """Reconstruction error per stock over the window, the top 20 % flagged; and the test of
        the flags made H days earlier: did they draw down more over (d-H, d] (market-residual
        paths), and does the error still predict drawdowns given trailing residual vol?"""
        if (day := trading_partition(context)) is None:
            yield from holiday_results(context)
            return
        days = (
            settings.evaluation.window + settings.evaluation.horizon
        )  # the window of d-H and the holding days after it
        decision = shift_trading_days(day, -settings.evaluation.horizon)
        missing = missing_history(
            store, day, {"raw_returns": days, "market_observables": days}, source.first_day()
        )
        if f"{decision:%Y-%m-%d}" not in trained_vae and decision >= first_model_day:
            missing.append(
                f"no trained_vae stored for the decision date {decision:%Y-%m-%d}; fill it with: "
                + fill_command("*trained_vae", pd.DatetimeIndex([decision]))
            )
        if missing:
            yield from gate(context, None, {HISTORY_CHECK: missing})
            return
        raw_returns = store.returns(day, days)
        observables = store.observables(day, days)
        market = observables.assign(date=pd.to_datetime(observables["date"])).set_index("date")[
            "market"
        ]
        window, problems = window_panel(raw_returns, day, settings.evaluation.window)
        report = model_errors(trained_vae[f"{day:%Y-%m-%d}"], window, market)
        report["flagged"] = flag_anomalies(report["recon_error"])
        truth = store.ground_truth(day) if has_truth(settings) else None
        planted = truth.planted if truth is not None else None
        report["planted"] = (
            planted.reindex(report.index).astype(float) if planted is not None else np.nan
        )
        metadata: dict = {"flagged": int(report["flagged"].sum())}
        report[["decision_date", "decision_error", "decision_flagged", "later_drawdown"]] = [
            pd.NaT,
            np.nan,
            np.nan,
            np.nan,
        ]
        if f"{decision:%Y-%m-%d}" in trained_vae:
            past, past_problems = window_panel(raw_returns, decision, settings.evaluation.window)
            held, _ = window_panel(raw_returns, day, settings.evaluation.horizon)
            if not past_problems:
                before = model_errors(trained_vae[f"{decision:%Y-%m-%d}"], past, market)
                # a name missing a day of (d-H, d] is not in ``held``: it drops out here
                span = pd.concat([past, held.reindex(columns=past.columns)]).dropna(axis=1)
                resid = market_residual_returns(span, market.reindex(span.index)).loc[held.index]
                test = anomaly_test(
                    before["recon_error"],
                    resid,
                    before["idio_vol"],
                    planted=planted.astype(bool) if planted is not None else None,
                    seed=training.seed,
                )
                report["decision_date"] = decision
                report["decision_error"] = before["recon_error"]
                report["decision_flagged"] = flag_anomalies(before["recon_error"]).astype(float)
                report["later_drawdown"] = max_drawdown(resid)
                metadata.update(
                    {k: v for k, v in test.model_dump().items() if isinstance(v, float)}
                )
        else:
            metadata["evaluation"] = (
                f"none: the decision date {decision:%Y-%m-%d} is before the first full window"
            )
        frame = report.rename_axis("ticker").reset_index()
        frame["flagged"] = frame["flagged"].astype(bool)
        errs = (
            [] if np.isfinite(frame["recon_error"]).all() else ["non-finite reconstruction errors"]
        )
        yield from gate(
            context,
            with_date(frame, day, ANOMALY_COLUMNS),
            {"errors_finite": errs + problems, HISTORY_CHECK: []},
            metadata,
        )

    return [anomaly_report]
