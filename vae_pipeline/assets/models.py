"""Models: the VAE and the regime-conditional VAE, refit on the trailing window."""

import numpy as np
import pandas as pd
import torch
from dagster import AssetExecutionContext, AssetIn, asset

from vae_pipeline.assets.common import (
    DUCKDB_POOL,
    PARTITION_COLUMN,
    markdown_table,
    non_trading_day_results,
    partition_day,
    with_date,
)
from vae_pipeline.checks import gate, gate_specs
from vae_pipeline.core.model_store import record_to_result, result_to_record
from vae_pipeline.core.panel import window_panel
from vae_pipeline.core.training import TrainConfig, TrainResult, train_vae
from vae_pipeline.partitions import training_window

MODEL_COLUMNS = [
    "model",
    "model_config",
    "train_config",
    "standardiser",
    "weights",
    "history",
    "epochs_run",
    "first_loss",
    "final_loss",
    "final_recon",
    "final_kl",
    "seconds",
    "device",
    "n_conditions",
]
TRAINING_CHECKS = ["loss_finite_decreasing", "weights_finite", "kl_nonnegative"]


def training_window_returns(
    raw_returns: pd.DataFrame, scaler: pd.DataFrame, day, window: int
) -> pd.DataFrame:
    """The W-day window of the names the standardised panel admitted (its column order)."""
    wide, problems = window_panel(raw_returns, day, window)
    if problems:
        raise ValueError("; ".join(problems))
    return wide[scaler["ticker"].tolist()]


def load_model(frame: pd.DataFrame, day: pd.Timestamp | None = None) -> TrainResult:
    """The stored model of ``day`` (or the only one in ``frame``)."""
    rows = frame if day is None else frame[pd.to_datetime(frame["date"]) == pd.Timestamp(day)]
    if len(rows) != 1:
        raise ValueError(f"expected one stored model for {day}, found {len(rows)}")
    return record_to_result(rows.iloc[0])


def _train(context, config, window: pd.DataFrame, conditions: np.ndarray | None, name: str):
    cfg = TrainConfig(
        latent_dim=config.latent_dim,
        beta=config.beta,
        epochs=config.epochs,
        lr=config.lr,
        hidden=config.hidden,
        seed=config.seed,
        device=config.device,
    ).validate()
    every = max(cfg.epochs // 5, 1)

    def progress(epoch, total, recon, kl):
        if epoch % every == 0 or epoch == cfg.epochs:
            context.log.info(
                f"{name} epoch {epoch}/{cfg.epochs}: loss {total:.3f} (recon {recon:.3f}, kl {kl:.3f})"
            )

    result = train_vae(window, cfg, conditions=conditions, progress=progress)
    history = result.history
    weights_ok = all(torch.isfinite(p).all().item() for p in result.model.parameters())
    problems = {
        "loss_finite_decreasing": []
        if (
            np.isfinite(history["total"]).all()
            and history["total"].iloc[-1] < history["total"].iloc[0]
        )
        else [f"loss went {history['total'].iloc[0]:.4g} -> {history['total'].iloc[-1]:.4g}"],
        "weights_finite": [] if weights_ok else ["non-finite model weights"],
        "kl_nonnegative": []
        if (history["kl"] >= -1e-6).all()
        else [f"min KL {history['kl'].min():.3g} < 0"],
    }
    record = {"model": name, **result_to_record(result)}
    metadata = {
        "final_loss": float(history["total"].iloc[-1]),
        "final_recon": float(history["recon"].iloc[-1]),
        "final_kl": float(history["kl"].iloc[-1]),
        "epochs_run": int(len(history)),
        "train_seconds": float(result.seconds),
        "device": result.device,
        "names": int(window.shape[1]),
        "loss_curve": markdown_table(history.iloc[:: max(len(history) // 10, 1)]),
    }
    return (
        with_date(pd.DataFrame([record]), partition_day(context), MODEL_COLUMNS),
        problems,
        metadata,
    )


def build(partitions, settings, training_config) -> list:
    window_in = AssetIn(partition_mapping=training_window(settings))

    @asset(
        partitions_def=partitions,
        group_name="models",
        metadata=PARTITION_COLUMN,
        ins={"raw_returns": window_in, "standardised_panel": AssetIn()},
        check_specs=gate_specs("trained_vae", TRAINING_CHECKS),
        output_required=False,
        pool=DUCKDB_POOL,
    )
    def trained_vae(
        context: AssetExecutionContext,
        config: training_config,
        raw_returns: pd.DataFrame,
        standardised_panel: pd.DataFrame,
    ):
        """The VAE refit on the window: weights (a BLOB, loaded with weights_only=True), its
        config, scaler and per-epoch training history (total, reconstruction, KL)."""
        if (skipped := non_trading_day_results(context)) is not None:
            yield from skipped
            return
        window = training_window_returns(
            raw_returns, standardised_panel, partition_day(context), config.window
        )
        yield from gate(context, *_train(context, config, window, None, "vae"))

    @asset(
        partitions_def=partitions,
        group_name="models",
        metadata=PARTITION_COLUMN,
        ins={
            "raw_returns": window_in,
            "standardised_panel": AssetIn(),
            "market_observables": window_in,
        },
        check_specs=gate_specs("trained_cvae", TRAINING_CHECKS),
        output_required=False,
        pool=DUCKDB_POOL,
    )
    def trained_cvae(
        context: AssetExecutionContext,
        config: training_config,
        raw_returns: pd.DataFrame,
        standardised_panel: pd.DataFrame,
        market_observables: pd.DataFrame,
    ):
        """The conditional VAE: the one-hot regime label (expansion / contraction) appended to
        encoder and decoder inputs, refit on the same window as the VAE."""
        if (skipped := non_trading_day_results(context)) is not None:
            yield from skipped
            return
        window = training_window_returns(
            raw_returns, standardised_panel, partition_day(context), config.window
        )
        regimes = regime_labels(market_observables, window.index)
        yield from gate(context, *_train(context, config, window, regimes, "cvae"))

    return [trained_vae, trained_cvae]


def regime_labels(observables: pd.DataFrame, dates: pd.DatetimeIndex) -> np.ndarray:
    """The regime label of each day in ``dates`` (raises when one is missing)."""
    labels = observables.assign(date=pd.to_datetime(observables["date"])).set_index("date")[
        "regime"
    ]
    missing = dates.difference(labels.index)
    if len(missing):
        raise ValueError(
            f"no regime label for {len(missing)} window days (first {missing[0]:%Y-%m-%d})"
        )
    return labels.reindex(dates).to_numpy(dtype=int)
