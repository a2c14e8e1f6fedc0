"""Batched Adam training: the models of many windows trained as one stacked model.

A ranged run (a backfill) trains the same model on consecutive days' windows. One window's
full-batch step is ~100 small ops (``core.training``), so at N = 500 a fit is dispatch-bound;
here the B windows' models are stacked (``torch.func.stack_module_state``) and one step runs
every op once for all of them (``torch.func.vmap`` over ``torch.func.functional_call``, PyTorch's
model-ensembling recipe), so the matrix products are B times larger and the per-op overhead is
paid once. The step is the one-window step verbatim (the same ``VAE`` methods and loss classes
run under ``vmap``), so:

- **Same initial weights.** Every window's model starts from the seeded initialisation of
  :func:`core.training.train_vae` (same seed, same shapes: identical for all windows).
- **Same noise.** The one-window fit draws its reparameterisation noise from a generator seeded
  with ``config.seed``, the same sequence for every window; ``vmap(randomness="same")`` draws it
  once per step for the whole batch, which is that sequence.
- **Independent optimisers.** The loss is the sum of the B models' losses, so each model's
  gradient is its own; Adam is elementwise, so Adam on the stacked parameters is B independent
  Adams. Everything global in the one-window loop is kept per model here: the loss history, the
  best epoch (``keep_best`` for the learned-noise models), the stopping rule of
  ``fit="converged"``, and a non-finite loss (the window is named).
- **Stopping.** A model that stops (its convergence rule) is taken out of the batch: its
  weights are final, and the batch is compacted (the survivors' parameters and Adam moments
  indexed), so a stopped model costs nothing afterwards.

Results equal one-window fits up to float rounding (batched vs unbatched kernels sum in a
different order): to ~1e-6 on small panels (the tests). Over hundreds of Adam steps at lr 3e-2
the rounding can grow into the fit's own optimiser noise: at N = 500 the one-window fit itself
moves as much when its window is perturbed by 1e-9 (``benchmarks/bench_batched_training.py``
reports both; e.g. the reference VAE's last-epoch loss moved 79 % and its ``W W'`` 88 % for 1e-9
noise).

Warm starts: ``init_states`` gives each window its own starting weights (the warm-start
chains of :func:`core.refit.models.fit_model_range`). Configurations the batch does not cover
(mini-batches, a validation tail, early stopping on patience) are left to the one-window loop
by the caller (:func:`batchable`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from vae_pipeline.core.converged import converged
from vae_pipeline.core.model import VAE, resolve_device
from vae_pipeline.core.standardise import Standardiser
from vae_pipeline.core.training import (
    ADAM_CONVERGE_WINDOW,
    TrainConfig,
    TrainResult,
    _as_frame_values,
    _check_labels,
    _LinearDecoderLoss,
    _LinearDecoderNLL,
    _one_hot,
    seeded_model,
)

# progress(epoch, total epochs) after every batched step.
BatchProgress = Callable[[int, int], None]
# Windows trained together at most: the batch holds ~10 (B, T, N) float32 tensors (inputs,
# activations and their gradients), so 64 windows of 504 x 500 are ~0.6 GB.
MAX_BATCH = 64
MAX_BATCH_BYTES = 1 << 30


def batchable(config: TrainConfig) -> bool:
    """Whether :func:`train_batched` covers ``config`` (full batch, no validation tail, no
    patience); otherwise the caller trains window by window."""
    return not config.batch_size and not config.val_fraction and not config.patience


def batch_size_for(n_days: int, n_names: int, limit: int = MAX_BATCH) -> int:
    """Windows per batch: ``limit`` at most, and ~``MAX_BATCH_BYTES`` of working memory."""
    per_window = 10 * 4 * n_days * max(n_names, 64)
    return max(1, min(limit, MAX_BATCH_BYTES // per_window))


# A batched step's fixed cost (dispatching ~100 ops forward and backward, whatever the batch),
# in windows' compute: per-window compute grows with T x N, so the overhead is ~STEP_OVERHEAD
# / (T N) windows. On 2 CPU cores (T = 504, N = 60): a reference-VAE step of 64 windows took
# 20 ms (timed), one of 16 windows ~9.7 ms (bench_batched_training: 0.182 s a window over 300
# epochs), i.e. 6.3 ms + 0.21 ms a window, ~30 windows.
STEP_OVERHEAD = 9e5


def step_overhead(n_days: int, n_names: int, device: str = "auto") -> float:
    """A batched step's fixed cost in windows' compute (see STEP_OVERHEAD); on an accelerator,
    where a window's compute is small beside a kernel launch, a whole batch's worth."""
    if resolve_device(device).type != "cpu":
        return float(MAX_BATCH)
    return STEP_OVERHEAD / max(1, n_days * n_names)


@dataclass
class _Prepared:
    """One window's inputs, as :func:`core.training.train_vae` prepares them."""

    standardiser: Standardiser
    z: np.ndarray  # standardised window, T x N float32
    onehot: np.ndarray | None  # T x C float32


def _prepare(window, labels, n_cond: int) -> _Prepared:
    X = _as_frame_values(window)
    if not np.isfinite(X).all():
        bad = int((~np.isfinite(X)).any(axis=1).sum())
        raise ValueError(f"returns contain NaN/inf in {bad} rows; clean the panel before training")
    if X.shape[0] < 2:
        raise ValueError(f"need at least 2 training days, got {X.shape[0]}")
    standardiser = Standardiser().fit(window if isinstance(window, pd.DataFrame) else X)
    onehot = None
    if n_cond:
        checked, _ = _check_labels(labels, X.shape[0], n_cond)
        onehot = _one_hot(checked, n_cond)
    return _Prepared(standardiser, standardiser.transform(X), onehot)


class _Step(nn.Module):
    """One window's loss at one step as the one-window loop computes it: the full-batch
    expansion (``_LinearDecoderLoss`` / ``_LinearDecoderNLL``) plus the conditional decoder's
    interaction prior. Run under ``vmap``."""

    def __init__(self, model: VAE, beta: float, prior_scale: float, generator) -> None:
        super().__init__()
        self.model, self.beta, self.prior_scale, self.generator = (
            model,
            beta,
            prior_scale,
            generator,
        )
        # The expansion of the loss classes, for the MLP decoder too (its last layer is linear in
        # its hidden layer): the generic loss's (B, T, N) elementwise passes cost more than the
        # batched matrix products at N = 500 (measured: 36 % of a vae_mlp step in aten::mul);
        # the expansion reads the window through one (B, T, N) x (B, T, m) product. Same loss up
        # to float rounding; the one-window loop keeps the generic loss for the MLP decoder.
        self.fast_cls = _LinearDecoderLoss if model.noise_kind == "fixed" else _LinearDecoderNLL

    def forward(self, x, xc, x_sq, x_sum, c):
        model = self.model
        # the loss class's constants, per window (they are vmapped inputs here)
        fast = object.__new__(self.fast_cls)
        fast.x, fast.xc, fast.t, fast.x_sq, fast.x_sum = x, xc, x.shape[0], x_sq, x_sum
        total, recon, kl = fast.loss(model, c, self.generator, self.beta)
        if self.prior_scale:
            total = total + self.prior_scale * model.interaction_weights().pow(2).sum()
        return torch.stack([total, recon, kl])


def _adam(params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    """The one-window loop's Adam (fused where the device has it) on the stacked parameters."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, lr=lr)


class _Batch:
    """The stacked parameters and Adam state of the models still training."""

    def __init__(self, model: VAE, n: int, lr: float, states: list[dict] | None = None) -> None:
        params, _ = stack_module_state([model] * n)
        self.names = list(params)
        if states is not None:  # each model from its own weights (a warm start)
            params = {
                k: torch.stack([s[k].to(v.device, v.dtype) for s in states])
                for k, v in params.items()
            }
        self.params = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
        self.opt = _adam(list(self.params.values()), lr)
        self.lr = lr

    def keep(self, rows: torch.Tensor) -> None:
        """Keep only the models at ``rows`` (parameters and Adam moments)."""
        old = self.opt
        new_params = {
            k: v.detach()[rows].clone().requires_grad_(True) for k, v in self.params.items()
        }
        new_opt = _adam(list(new_params.values()), self.lr)
        for k in self.names:
            state = old.state.get(self.params[k])
            if not state:
                continue
            new_opt.state[new_params[k]] = {
                name: (val if name == "step" else val[rows].clone()) for name, val in state.items()
            }
        self.params, self.opt = new_params, new_opt

    def state_of(self, row: int) -> dict[str, torch.Tensor]:
        return {k: v.detach()[row].clone() for k, v in self.params.items()}


def train_batched(
    windows: Sequence[pd.DataFrame | np.ndarray],
    config: TrainConfig,
    conditions: Sequence[np.ndarray] | None = None,
    n_conditions: int | None = None,
    progress: BatchProgress | None = None,
    max_batch: int = MAX_BATCH,
    init_states: Sequence[dict] | None = None,
) -> list[TrainResult]:
    """Train one model per window (all with the same names and length) with ``config``, as
    :func:`core.training.train_vae` would one by one, batched (see the module doc).
    ``conditions[i]`` labels window i's days (a CVAE, ``n_conditions`` classes, default the
    labels' count); ``init_states[i]``: window i's starting weights (a warm start, as
    ``train_vae(init_state=...)``; default the seeded initialisation); one :class:`TrainResult`
    per window, in order; each result's ``seconds`` is its share of the batch's time."""
    config = config.validate()
    if not batchable(config):
        raise ValueError("train_batched covers full-batch fits without validation or patience")
    if not windows:
        return []
    shapes = {_as_frame_values(w).shape for w in windows}
    if len(shapes) != 1:
        raise ValueError(f"a batch needs windows of one shape, got {sorted(shapes)}")
    ((T, N),) = shapes
    if isinstance(windows[0], pd.DataFrame):
        cols = list(windows[0].columns)
        if any(list(w.columns) != cols for w in windows):
            raise ValueError("a batch needs windows with the same columns in the same order")
    n_cond = 0
    if conditions is not None:
        if len(conditions) != len(windows):
            raise ValueError(f"{len(windows)} windows but {len(conditions)} label arrays")
        if n_conditions is None:
            n_conditions = max(max(int(np.max(c)) + 1 for c in conditions), 2)
        n_cond = int(n_conditions)
    elif n_conditions:
        raise ValueError("n_conditions given without conditions")
    if init_states is not None and len(init_states) != len(windows):
        raise ValueError(f"{len(windows)} windows but {len(init_states)} initial states")
    step = batch_size_for(T, N, max_batch)
    out: list[TrainResult] = []
    for start in range(0, len(windows), step):
        part = slice(start, start + step)
        out += _train_chunk(
            list(windows[part]),
            None if conditions is None else list(conditions[part]),
            n_cond,
            config,
            progress,
            first_index=start,
            states=None if init_states is None else list(init_states[part]),
        )
    return out


def _train_chunk(
    windows, conditions, n_cond, config, progress, first_index, states=None
) -> list[TrainResult]:
    B = len(windows)
    prepared = [
        _prepare(w, None if conditions is None else conditions[i], n_cond)
        for i, w in enumerate(windows)
    ]
    T, N = prepared[0].z.shape
    device = resolve_device(config.device)
    model = seeded_model(config, N, n_cond)  # the one-window fit's seeded initialisation
    model.to(device).train()
    noise_gen = torch.Generator(device=device).manual_seed(config.seed)
    prior_scale = 0.0
    if model.interaction_weights() is not None and config.interaction_prior_sd:
        prior_scale = 1.0 / (2.0 * config.interaction_prior_sd**2 * T)
    step = _Step(model, config.beta, prior_scale, noise_gen)

    x = torch.from_numpy(np.stack([p.z for p in prepared])).to(device)
    x64 = x.double()
    if model.noise_kind == "fixed":  # the loss classes' float64-accumulated constants
        x_sq = (x64 * x64).sum(dim=(1, 2)).to(x.dtype)
    else:
        x_sq = (x64 * x64).sum(dim=1).to(x.dtype)
    x_sum = x64.sum(dim=1).to(x.dtype)
    del x64
    c = None
    xc = x  # the encoder's input: the window, with the condition joined once (a CVAE)
    if n_cond:
        c = torch.from_numpy(np.stack([p.onehot for p in prepared])).to(device)
        xc = torch.cat([x, c.to(x.dtype)], dim=2)

    def loss_of(params, xb, xcb, sq, sm, cb):
        args = (xb, xcb, sq, sm, cb)
        return functional_call(step, {f"model.{k}": v for k, v in params.items()}, args)

    batched_loss = vmap(
        loss_of, in_dims=(0, 0, 0, 0, 0, None if c is None else 0), randomness="same"
    )

    batch = _Batch(model, B, config.lr, states)
    alive = list(range(B))  # window index of each batch row
    rows: list[list[dict]] = [[] for _ in range(B)]
    keep_best = model.noise_kind == "learned"
    best_score = [math.inf] * B
    best_epoch: list[int | None] = [None] * B
    best_state: dict[str, torch.Tensor] | None = None  # stacked over the alive rows
    running: list[list[float]] = [[] for _ in range(B)]
    final: list[dict | None] = [None] * B
    stop: list[str | None] = [None] * B
    budget = config.max_seconds * B if config.fit == "converged" else 0.0
    t0 = time.perf_counter()

    # the alive models' inputs, compacted with the batch when models stop (not every step)
    xs, xcs, sqs, sms, cs = x, xc, x_sq, x_sum, c
    for epoch in range(1, config.epochs + 1):
        losses = batched_loss(batch.params, xs, xcs, sqs, sms, cs)  # (b, 3)
        batch.opt.zero_grad(set_to_none=True)
        losses[:, 0].sum().backward()
        batch.opt.step()
        values = losses.detach().cpu().tolist()
        if progress is not None:
            progress(epoch, config.epochs)
        finished: list[int] = []
        improved: list[int] = []
        over_budget = budget and time.perf_counter() - t0 > budget
        for row, (i, (total_f, recon_f, kl_f)) in enumerate(zip(alive, values, strict=True)):
            rows[i].append({"epoch": epoch, "total": total_f, "recon": recon_f, "kl": kl_f})
            if not math.isfinite(total_f):
                raise FloatingPointError(
                    f"window {first_index + i}: loss became non-finite at epoch {epoch}; lower lr"
                )
            if config.fit == "converged":
                r = running[i]
                r.append(min(r[-1], total_f) if r else total_f)
                if converged(r, window=ADAM_CONVERGE_WINDOW):
                    stop[i] = "converged"
                elif over_budget:
                    stop[i] = "budget"
            if keep_best and total_f < best_score[i]:
                best_score[i], best_epoch[i] = total_f, epoch
                improved.append(row)
            if stop[i] is not None:
                finished.append(row)
        if improved:  # snapshot the improved models' weights (after this step, as the loop does)
            mask = torch.zeros(len(alive), dtype=torch.bool, device=device)
            mask[improved] = True
            current = {k: v.detach() for k, v in batch.params.items()}
            if best_state is None:
                best_state = {k: v.clone() for k, v in current.items()}
            else:
                for k, v in current.items():
                    shape = (-1,) + (1,) * (v.dim() - 1)
                    best_state[k] = torch.where(mask.view(shape), v, best_state[k])
        if finished:
            for row in finished:
                final[alive[row]] = _final_state(batch, best_state, row, keep_best)
            keep = [row for row in range(len(alive)) if row not in set(finished)]
            if not keep:
                alive = []
                break
            idx = torch.tensor(keep, device=device)
            batch.keep(idx)
            xs, sqs, sms = xs[idx], sqs[idx], sms[idx]
            xcs = xs if xc is x else xcs[idx]
            cs = None if cs is None else cs[idx]
            if best_state is not None:
                best_state = {k: v[idx] for k, v in best_state.items()}
            alive = [alive[row] for row in keep]
    for row, i in enumerate(alive):
        final[i] = _final_state(batch, best_state, row, keep_best)

    seconds = (time.perf_counter() - t0) / B
    results = []
    for i, prep in enumerate(prepared):
        result_model = VAE(**_model_args(model))
        result_model.load_state_dict(final[i])
        results.append(
            TrainResult(
                model=result_model.cpu().eval(),
                standardiser=prep.standardiser,
                history=pd.DataFrame(rows[i]),
                config=config,
                seconds=seconds,
                device=str(device),
                n_conditions=n_cond,
                best_epoch=best_epoch[i] if keep_best else len(rows[i]),
                stop_reason=stop[i] if config.fit == "converged" else None,
            )
        )
    return results


def _final_state(batch: _Batch, best_state, row: int, keep_best: bool) -> dict[str, torch.Tensor]:
    """Model ``row``'s weights to keep: its best epoch's (``keep_best``), else its last."""
    if keep_best and best_state is not None:
        return {k: v[row].clone().cpu() for k, v in best_state.items()}
    return {k: v.cpu() for k, v in batch.state_of(row).items()}


def _model_args(model: VAE) -> dict:
    args = model.config()
    args.setdefault("encoder", model.encoder_kind)
    return args
