"""Models: one asset per model the estimator registry needs, refit on the trailing window.

The registry (``core.covariance.registry``) names the model each estimator reads; every
distinct one is an asset here (``trained_vae``, ``trained_cvae``, their learned-noise siblings,
...), so training shows in the lineage and happens nowhere else. A run's days (one, or every
day of a ranged run) are fitted together through ``core.refit.fit_model_range`` (batched
training across the windows), or, under warm start, one after the other through
``core.refit.fit_model``: each day seeds from the latest model before it, those of the same
range included (the per-day chain, kept as it is). In a ranged run the model fitted to
convergence by Adam (``vae_mlp``) trains as warm-start chains of ``chain_length`` days (each
chain's first day cold, the rest from the day before: ``core.refit.WarmChains``), since a cold
fit of it costs 1,100-1,550 epochs a day; one-day runs fit it cold.

Warm start (``VAE_PIPELINE_WARM_START=1``, off by default): a plain model also reads its own
partitions of the previous week (a self-dependency: a backfill then runs them in date order)
and, while the run's ``warm_start`` is on, starts from the latest of them for ``warm_epochs`` at
``warm_lr``; a sibling (e.g. learned noise) starts from the same day's plain model instead.
``warm_started_from`` in the metadata names the seed, or why the fit started cold.

Each model asset carries a ``code_version`` (see :func:`model_code_version`): a hash of the
code that defines a fit and of the model's registry key, so the UI marks the stored
partitions of a model stale when that code changes, and only of the models it touches.
"""

import hashlib
import importlib
import inspect
import time
import warnings

import numpy as np
import pandas as pd
import torch
from dagster import (
    AssetExecutionContext,
    AssetIn,
    BackfillPolicy,
    BetaWarning,
    Failure,
    TimeWindowPartitionMapping,
    asset,
)

from vae_pipeline.core.covariance import REGISTRY, ModelKey, model_keys, model_names
from vae_pipeline.core.refit import fit_model, fit_model_range, model_config, regime_labels
from vae_pipeline.core.training import TrainConfig, TrainResult
from vae_pipeline.core.warm_start import (
    WARM_LOSS_TOLERANCE,
    kept_loss,
    previous_state,
    sibling_state,
    warm_config,
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
)
from vae_pipeline.pipeline.checks import DayGate, gate_days, gate_specs, skipped
from vae_pipeline.pipeline.io_managers import RANGE_METADATA
from vae_pipeline.pipeline.partitions import training_window
from vae_pipeline.pipeline.resources import DataSourceResource, TrainingResource
from vae_pipeline.pipeline.window_store import WindowStore

TRAINING_CHECKS = ["loss_finite_decreasing", "weights_finite", "kl_nonnegative"]
# What a warm start may seed from: the model's own partitions of the previous week (the latest
# stored one is used, so a holiday does not break the chain); none before the first partition.
PREVIOUS_WEEK = {"start_offset": -5, "end_offset": -1}
PROGRESS_SECONDS = 5.0
MODEL_KEYS = model_keys(list(REGISTRY))
# The modules whose code decides what a fit returns for given inputs and settings: the
# networks, the training loops (gradient and converged EM fits), the scaler, the warm start and
# the refit stage that calls them. An edit to any of them changes every model's code_version.
MODEL_SOURCES = (
    "vae_pipeline.core.model",
    "vae_pipeline.core.training",
    "vae_pipeline.core.converged",
    "vae_pipeline.core.converged_cvae",
    "vae_pipeline.core.standardise",
    "vae_pipeline.core.warm_start",
    "vae_pipeline.core.refit.models",
)


def model_asset_name(key: ModelKey) -> str:
    """``trained_vae`` (the headline model), ``trained_vae_reference``, ``trained_cvae``, ...:
    ``trained_`` + the registry's name of the model (``core.covariance.model_names``)."""
    return "trained_" + model_names()[key]


def model_code_version(key: ModelKey) -> str:
    """The ``code_version`` of ``key``'s asset: 12 hex digits of a SHA-256 over the source of
    :data:`MODEL_SOURCES` and the registry's key of the model (its kind and ``TrainConfig``
    overrides, e.g. ``noise=learned``, taken from the estimator registry entries that read it).

    Derived, never bumped by hand: editing the training loop marks every model's stored
    partitions stale in the UI (Dagster compares a materialisation's code version with the
    asset's), while changing one registry entry's overrides marks only that model's. Training
    settings (epochs, lr, ...) are run configuration, not code, and are left out on purpose.
    """
    digest = hashlib.sha256()
    for module in MODEL_SOURCES:
        digest.update(inspect.getsource(importlib.import_module(module)).encode())
    digest.update(repr((key.kind, tuple(key.overrides))).encode())
    return digest.hexdigest()[:12]


def refines_base(key: ModelKey) -> bool:
    """A learned-noise sibling starts, under warm start, from the day's plain model."""
    return dict(key.overrides) == {"noise": "learned"}


def _seed(training: TrainingResource, key: ModelKey, window, previous, base, n_conditions, day):
    """(train config, initial weights or None, ``warm_started_from``) of one fit."""
    cfg = model_config(training.train_config(), key)
    if not training.warm_start:
        return cfg, None, "cold (warm_start off)"
    if key.overrides and not refines_base(key):
        return cfg, None, "cold: this model does not warm-start"
    warm = warm_config(cfg, training.warm_epochs, training.warm_lr)
    if key.overrides:  # a learned-noise sibling refines the same window's plain model
        return warm, sibling_state(base), f"the day's {model_asset_name(key.base)}"
    if previous is None:
        raise Failure(
            "warm_start is on but this asset was built without its previous partitions: "
            "set VAE_PIPELINE_WARM_START=1 (it adds the lineage) or turn warm_start off"
        )
    earlier = sorted(k for k in previous if pd.Timestamp(k) < day)
    if not earlier:
        return cfg, None, "cold: no model stored in the previous week"
    state, why = previous_state(previous[earlier[-1]], window.columns, cfg, n_conditions)
    return (warm, state, earlier[-1]) if state is not None else (cfg, None, f"cold: {why}")


def _problems(result: TrainResult, seeded: bool) -> dict[str, list[str]]:
    """The training gates: a cold fit's loss must fall, a seeded one's must not rise much."""
    history = result.history
    first, last = history["total"].iloc[0], kept_loss(result)
    fell = last <= first * (1 + WARM_LOSS_TOLERANCE) if seeded else last < first
    weights_ok = all(torch.isfinite(p).all().item() for p in result.model.parameters())
    return {
        "loss_finite_decreasing": []
        if np.isfinite(history["total"]).all() and fell
        else [f"loss went {first:.4g} -> {last:.4g}" + (" (warm start)" if seeded else "")],
        "weights_finite": [] if weights_ok else ["non-finite model weights"],
        "kl_nonnegative": []
        if (history["kl"].dropna() >= -1e-6).all()  # an EM fit records its KL at the end only
        else [f"min KL {history['kl'].min():.3g} < 0"],
    }


def _metadata(result: TrainResult, seeded_from: str, names: int) -> dict:
    history = result.history
    extra = {}
    if result.stop_reason is not None:  # a fit run to convergence: why it stopped, its latents
        extra = {"stop_reason": result.stop_reason, "latents": int(result.config.latent_dim),
                 "active_latents": int(result.active_latents or 0)}  # fmt: skip
    return {
        **extra,
        "warm_started_from": seeded_from,
        "final_loss": float(history["total"].iloc[-1]),
        "final_recon": float(history["recon"].iloc[-1]),
        "final_kl": float(history["kl"].iloc[-1]),
        "epochs_run": int(len(history)),
        "train_seconds": float(result.seconds),
        "device": result.device,
        "names": names,
        "loss_curve": markdown_table(history.iloc[:: max(len(history) // 10, 1)]),
    }


def _progress(context, name: str, config: TrainConfig, windows: int = 1):
    """A log line every few seconds of a long fit (each line is a stored event), and one per
    finished window (``window i/n`` in a ranged run: the per-day progress of its training)."""
    logged, done = [time.monotonic()], [0]

    def progress(key, epoch, total):
        if epoch == total:
            done[0] += 1
        if epoch == total or time.monotonic() - logged[0] >= PROGRESS_SECONDS:
            logged[0] = time.monotonic()
            where = (
                f" (window {min(done[0] + (epoch < total), windows)}/{windows})"
                if windows > 1
                else ""
            )
            context.log.info(f"{name} epoch {epoch}/{total}{where}")

    return progress


def _model_asset(key: ModelKey, partitions, settings):
    name, window_days = model_asset_name(key), settings.evaluation.window
    ins = {"standardised_panel": AssetIn()}
    warm = settings.model.warm_start
    if warm and refines_base(key):
        ins["base"] = AssetIn(model_asset_name(key.base))
    elif warm and not key.overrides:
        with warnings.catch_warnings():  # allow_nonexistent_upstream_partitions is beta
            warnings.simplefilter("ignore", BetaWarning)
            previous_week = TimeWindowPartitionMapping(
                **PREVIOUS_WEEK, allow_nonexistent_upstream_partitions=True
            )
        ins["previous"] = AssetIn(name, partition_mapping=previous_week, metadata=RANGE_METADATA)
    conditional = key.kind == "cvae"
    history = {"market_observables": window_days} if conditional else {}

    @asset(
        name=name,
        description=f"The {key.label} model refit on the window [d-W+1, d]: weights (loaded with "
        "weights_only=True), config, scaler and per-epoch training history (total, "
        "reconstruction, KL)" + (", conditioned on the regime label." if conditional else "."),
        partitions_def=partitions,
        group_name="models",
        metadata=PARTITION_COLUMN,
        ins=ins,
        deps=window_deps(training_window(settings), *history),
        check_specs=gate_specs(
            name, [*TRAINING_CHECKS, *([HISTORY_CHECK] if history else [])], partitions=partitions
        ),
        backfill_policy=BackfillPolicy.single_run(),
        output_required=False,
        pool=DUCKDB_POOL,
        io_manager_key="model_io_manager",  # a TrainResult (vae_pipeline.store.models)
        kinds={"pytorch", storage_kind(settings)},
        owners=OWNERS,
        tags=catalog_tags("model"),
        code_version=model_code_version(key),
    )
    def trained_model(
        context: AssetExecutionContext,
        training: TrainingResource,
        store: WindowStore,
        source: DataSourceResource,
        standardised_panel: pd.DataFrame,
        **seeds,  # warm start only: "previous" (its previous week) or "base" (the day's plain model)
    ):
        if not (days := run_days(context)):
            yield from holiday_results(context)
            return
        view, panels, first = store.over(days), by_day(standardised_panel), source.first_day()
        outcomes, inputs = {}, {}
        for day in days:  # the history gate and the training window of each day
            if day not in panels:
                outcomes[day] = skipped(not_stored("standardised_panel", day))
            elif missing := missing_history(view, day, history, first):
                outcomes[day] = DayGate(problems={HISTORY_CHECK: missing})
            else:
                window = view.training_window(day, window_days, panels[day])
                regimes = (
                    regime_labels(view.observables(day, window_days), window.index)
                    if conditional
                    else None
                )
                inputs[day] = (window, regimes)
        for day, fitted in _fit(context, training, inputs, seeds).items():
            if fitted is None:
                outcomes[day] = skipped(not_stored(model_asset_name(key.base), day))
                continue
            result, seeded_from, seeded = fitted
            problems = {
                **_problems(result, seeded),
                **({HISTORY_CHECK: []} if history else {}),
            }
            metadata = _metadata(result, seeded_from, inputs[day][0].shape[1])
            outcomes[day] = DayGate(result, problems, metadata)
        outcomes = dict(sorted(outcomes.items()))
        yield from gate_days(context, outcomes,
                             lambda _: {f"{d:%Y-%m-%d}": g.value for d, g in outcomes.items()
                                        if g.value is not None and not g.refused})  # fmt: skip

    def _fit(context, training, inputs: dict, seeds: dict) -> dict:
        """day -> (TrainResult, ``warm_started_from``, seeded?) of the run's days: cold fits
        of every window in one batch; warm starts day by day, each seeding from the latest
        model before it (one fitted earlier in this run included)."""
        cfg = model_config(training.train_config(), key)
        progress = _progress(context, name, cfg, windows=len(inputs))
        if not training.warm_start or (key.overrides and not refines_base(key)):
            why = "cold (warm_start off)" if not training.warm_start else (
                "cold: this model does not warm-start")  # fmt: skip
            days = list(inputs)
            results = fit_model_range(
                key,
                [inputs[d][0] for d in days],
                [inputs[d][1] for d in days],
                cfg,
                progress=progress,
                chains=training.chains(),
            )
            out = {}
            for d, r in zip(days, results, strict=True):
                if r.seeded_by is None:
                    out[d] = (r, why, False)
                else:  # a warm-start chain of this ranged run (vae_mlp; chain_length)
                    out[d] = (r, f"{days[r.seeded_by]:%Y-%m-%d} (this run's chain)", True)
            return out
        previous, base, out = by_key(seeds.get("previous")), by_key(seeds.get("base")), {}
        for day, (window, regimes) in inputs.items():
            if refines_base(key) and model_of(base, day) is None:
                out[day] = None  # its seed, the day's plain model, was refused
                continue
            n_cond = max(int(np.max(regimes)) + 1, 2) if conditional else 0
            cfg_d, state, seeded_from = _seed(
                training, key, window,
                previous if "previous" in seeds else None, model_of(base, day), n_cond, day,
            )  # fmt: skip
            result = fit_model(key, window, regimes, cfg_d, init_state=state, progress=progress)
            out[day] = (result, seeded_from, state is not None)
            previous[f"{day:%Y-%m-%d}"] = result  # the next day of the range seeds from it
        return out

    return trained_model


def build(partitions, settings) -> list:
    return [_model_asset(key, partitions, settings) for key in MODEL_KEYS]
