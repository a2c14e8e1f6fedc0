"""Models: the VAE and the regime-conditional VAE, refit on the trailing window.

Warm start (``VAE_PIPELINE_WARM_START=1``, off by default): each model asset also reads its own
partitions of the previous week (a self-dependency, drawn in the asset graph; a backfill then
runs the partitions in date order) and, while the run's ``warm_start`` is on, seeds the refit
with the latest of them and trains ``warm_epochs`` at ``warm_lr`` (``core.warm_start``). The
materialisation's ``warm_started_from`` names the partition used, or why the fit started cold.
"""

import time
import warnings

import numpy as np
import pandas as pd
import torch
from dagster import (
    AssetExecutionContext,
    AssetIn,
    BetaWarning,
    Failure,
    TimeWindowPartitionMapping,
    asset,
)

from vae_pipeline.core.refit import regime_labels, training_window_returns
from vae_pipeline.core.training import TrainResult, train_vae
from vae_pipeline.core.warm_start import previous_state, warm_config
from vae_pipeline.pipeline.assets.common import (
    DUCKDB_POOL,
    PARTITION_COLUMN,
    markdown_table,
    non_trading_day_results,
    partition_day,
    window_deps,
)
from vae_pipeline.pipeline.checks import gate, gate_specs
from vae_pipeline.pipeline.io_managers import RANGE_METADATA
from vae_pipeline.pipeline.partitions import training_window
from vae_pipeline.pipeline.resources import TrainingResource
from vae_pipeline.pipeline.window_store import WindowStore

TRAINING_CHECKS = ["loss_finite_decreasing", "weights_finite", "kl_nonnegative"]
# What a warm start may seed from: the model's own partitions of the previous week (the latest
# stored one is used, so a holiday does not break the chain); none before the first partition.
PREVIOUS_WEEK = {"start_offset": -5, "end_offset": -1}
# A seeded fit starts near its optimum, so its loss need not fall; it must not end more than
# this fraction above where it started (a cold fit's must fall).
WARM_LOSS_TOLERANCE = 0.02
PROGRESS_SECONDS = 5.0


def _seed(training, previous: dict[str, TrainResult] | None, window, n_conditions: int, day):
    """(train training, initial weights or None, ``warm_started_from``) of one fit."""
    cfg = training.train_config()
    if not training.warm_start:
        return cfg, None, "cold (warm_start off)"
    if previous is None:
        raise Failure(
            "warm_start is on but this asset was built without its previous partitions: "
            "set VAE_PIPELINE_WARM_START=1 (it adds the lineage) or turn warm_start off"
        )
    earlier = sorted(key for key in previous if pd.Timestamp(key) < day)
    if not earlier:
        return cfg, None, "cold: no model stored in the previous week"
    state, why = previous_state(previous[earlier[-1]], window.columns, cfg, n_conditions)
    if state is None:
        return cfg, None, f"cold: {why}"
    seeded = warm_config(cfg, training.warm_epochs, training.warm_lr)
    return seeded, state, earlier[-1]


def _train(context, training, window: pd.DataFrame, conditions, name: str, previous=None):
    n_cond = 0 if conditions is None else max(int(np.max(conditions)) + 1, 2)
    cfg, state, source = _seed(training, previous, window, n_cond, partition_day(context))
    logged = [time.monotonic()]

    def progress(epoch, total, recon, kl):
        # a log line is an event the instance stores (~7 ms each in SQLite): one every few
        # seconds of a long fit, and the last epoch's (the curve is in the metadata)
        if epoch == cfg.epochs or time.monotonic() - logged[0] >= PROGRESS_SECONDS:
            logged[0] = time.monotonic()
            context.log.info(
                f"{name} epoch {epoch}/{cfg.epochs}: loss {total:.3f} (recon {recon:.3f}, kl {kl:.3f})"
            )

    result = train_vae(
        window,
        cfg,
        conditions=conditions,
        n_conditions=n_cond or None,
        progress=progress,
        init_state=state,
    )
    history = result.history
    first, last = history["total"].iloc[0], history["total"].iloc[-1]
    fell = last < first if state is None else last <= first * (1 + WARM_LOSS_TOLERANCE)
    weights_ok = all(torch.isfinite(p).all().item() for p in result.model.parameters())
    problems = {
        "loss_finite_decreasing": []
        if np.isfinite(history["total"]).all() and fell
        else [f"loss went {first:.4g} -> {last:.4g}" + (" (warm start)" if state else "")],
        "weights_finite": [] if weights_ok else ["non-finite model weights"],
        "kl_nonnegative": []
        if (history["kl"] >= -1e-6).all()
        else [f"min KL {history['kl'].min():.3g} < 0"],
    }
    metadata = {
        "warm_started_from": source,
        "final_loss": float(last),
        "final_recon": float(history["recon"].iloc[-1]),
        "final_kl": float(history["kl"].iloc[-1]),
        "epochs_run": int(len(history)),
        "train_seconds": float(result.seconds),
        "device": result.device,
        "names": int(window.shape[1]),
        "loss_curve": markdown_table(history.iloc[:: max(len(history) // 10, 1)]),
    }
    return result, problems, metadata


def _model_asset(name: str, description: str, partitions, settings, deps, fit):
    """A model asset; with ``settings.model.warm_start`` it also reads its previous week."""
    ins = {"standardised_panel": AssetIn()}
    if settings.model.warm_start:
        with warnings.catch_warnings():  # allow_nonexistent_upstream_partitions is beta
            warnings.simplefilter("ignore", BetaWarning)
            previous_week = TimeWindowPartitionMapping(
                **PREVIOUS_WEEK, allow_nonexistent_upstream_partitions=True
            )
        ins["previous"] = AssetIn(name, partition_mapping=previous_week, metadata=RANGE_METADATA)
    spec = dict(
        name=name,
        description=description,
        partitions_def=partitions,
        group_name="models",
        metadata=PARTITION_COLUMN,
        ins=ins,
        deps=deps,
        check_specs=gate_specs(name, TRAINING_CHECKS),
        output_required=False,
        pool=DUCKDB_POOL,
        io_manager_key="model_io_manager",  # a TrainResult (vae_pipeline.store.models)
    )
    if settings.model.warm_start:

        @asset(**spec)
        def with_previous(
            context: AssetExecutionContext,
            training: TrainingResource,
            store: WindowStore,
            standardised_panel: pd.DataFrame,
            previous: dict,
        ):
            yield from fit(context, training, store, standardised_panel, previous)

        return with_previous

    @asset(**spec)
    def cold_only(
        context: AssetExecutionContext,
        training: TrainingResource,
        store: WindowStore,
        standardised_panel: pd.DataFrame,
    ):
        yield from fit(context, training, store, standardised_panel, None)

    return cold_only


def _fit(conditional: bool, settings):
    name = "cvae" if conditional else "vae"

    def fit(context, training, store, standardised_panel, previous):
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
        regimes = (
            regime_labels(store.observables(day, settings.evaluation.window), window.index)
            if conditional
            else None
        )
        yield from gate(context, *_train(context, training, window, regimes, name, previous))

    return fit


def build(partitions, settings) -> list:
    window = training_window(settings)
    trained_vae = _model_asset(
        "trained_vae",
        "The VAE refit on the window: weights (a BLOB, loaded with weights_only=True), its "
        "training, scaler and per-epoch training history (total, reconstruction, KL).",
        partitions, settings, [], _fit(conditional=False, settings=settings),
    )  # fmt: skip
    trained_cvae = _model_asset(
        "trained_cvae",
        "The conditional VAE: the one-hot regime label (expansion / contraction) appended to "
        "encoder and decoder inputs, refit on the same window as the VAE.",
        partitions, settings, window_deps(window, "market_observables"),
        _fit(conditional=True, settings=settings),
    )  # fmt: skip
    return [trained_vae, trained_cvae]
