"""Warm starts: seeding a daily refit with weights already trained (pure layer, no Dagster).

The window of day d shares W - 1 of its W days with the window of the trading day before, so
yesterday's model is already close to today's optimum. Seeding today's fit with it and training
fewer epochs at a lower learning rate reaches (nearly) the cold fit's model for a fraction of the
epochs. Fresh Adam at the cold rate (3e-2) would undo the seed: its first steps move every weight
by about ``lr`` whatever the gradient's size (the bias-corrected moments of a single gradient give
its sign), and the loss rises (measured 13.57 -> 15.17 over the first 5 epochs); at
:data:`WARM_LR` it keeps falling. ``benchmarks/warm_start.py`` measures the accuracy cost in the
walk-forward horse race.

Two seeds are used: the previous partition's model of the same kind (same names, same shape),
and, for the learned-noise variants, the same window's fixed-noise fit (its encoder and decoder,
with the default initial noise variance), which is what those variants refine.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from vae_pipeline.core.model import NOISE_LOGVAR_INIT
from vae_pipeline.core.training import TrainConfig, TrainResult

# Epochs and Adam learning rate of a warm-started refit (cold: TrainConfig's 300 at 3e-2).
WARM_EPOCHS = 100
WARM_LR = 1e-2
# A seeded fit starts near its optimum, so its loss need not fall; it must not end more than
# this fraction above where it started (the training gate; a cold fit's loss must fall).
WARM_LOSS_TOLERANCE = 0.02


def warm_config(config: TrainConfig, epochs: int = WARM_EPOCHS, lr: float = WARM_LR) -> TrainConfig:
    """``config`` for a seeded fit: ``epochs`` (at most the cold count) at rate ``lr``."""
    return replace(config, epochs=min(int(epochs), config.epochs), lr=float(lr)).validate()


def expected_shape(n_names: int, config: TrainConfig, n_conditions: int) -> dict:
    """The ``VAE.config()`` a fit of ``n_names`` names with ``config`` produces."""
    return {
        "n_inputs": int(n_names),
        "latent_dim": int(config.latent_dim),
        "hidden": int(config.hidden),
        "n_conditions": int(n_conditions),
        "decoder": config.model_decoder(n_conditions),
        "noise": config.noise,
    }


def previous_state(
    previous: TrainResult | None, columns, config: TrainConfig, n_conditions: int = 0
) -> tuple[dict | None, str]:
    """``previous``'s weights when they can seed a fit of ``columns`` (same names in the same
    order, same architecture) with ``config``; otherwise ``None`` and the reason."""
    if previous is None:
        return None, "no earlier model stored"
    before = [str(c) for c in (previous.standardiser.columns_ or [])]
    now = [str(c) for c in columns]
    if before != now:
        gone, new = sorted(set(before) - set(now)), sorted(set(now) - set(before))
        return None, (
            f"the universe changed ({len(before)} -> {len(now)} names; "
            f"out {gone[:3]}, in {new[:3]})"
        )
    shape = expected_shape(len(now), config, n_conditions)
    if previous.model.config() != shape:
        return None, f"the model shape changed: {previous.model.config()} -> {shape}"
    return {k: v.detach().clone() for k, v in previous.model.state_dict().items()}, "ok"


def sibling_state(fixed: TrainResult) -> dict:
    """Starting weights of a learned-noise fit from the same window's fixed-noise fit: its
    encoder and decoder, and the default initial per-stock noise log-variance."""
    state = {k: v.detach().clone() for k, v in fixed.model.state_dict().items()}
    state["log_noise_var"] = torch.full((fixed.model.n_inputs,), NOISE_LOGVAR_INIT)
    return state


def kept_loss(result: TrainResult) -> float:
    """The training loss of the weights ``result`` kept: the row after its best epoch when it
    kept an earlier epoch's weights (they are the weights after that epoch's step), else the
    last row."""
    total = result.history["total"]
    if result.best_epoch is not None and result.best_epoch < len(total):
        return float(total.iloc[result.best_epoch])
    return float(total.iloc[-1])


def no_worse_than_seed(
    result: TrainResult, seed: dict, tolerance: float = WARM_LOSS_TOLERANCE
) -> TrainResult:
    """A warm fit whose kept weights ended more than ``tolerance`` above the loss its seed had
    on the same window (the first row of its history), which the training gate refuses,
    returns the seed instead (``best_epoch`` 0): fresh Adam moments can push a sharp learned-
    noise optimum uphill for a while (measured: 3 of 271 chained ``vae_mlp`` days ended 2-3 %
    above their seed at N = 60), and the seed is already a model of this window. Within the
    tolerance the warm fit is kept: a single-draw loss moves by its Monte-Carlo noise from step
    to step, so a seeded fit already at its optimum ends a little above its first draw about
    half the time (a strict rule kept the seed on 13 of 16 chained reference-VAE days)."""
    if kept_loss(result) <= float(result.history["total"].iloc[0]) * (1 + tolerance):
        return result
    result.model.load_state_dict(seed)
    result.best_epoch = 0
    return result
