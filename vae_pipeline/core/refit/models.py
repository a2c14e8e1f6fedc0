"""Stage 1 of the daily refit: train every model the window's estimators read.

This is the only place the refit trains. Which models to train is read off the estimator
registry (each model-based estimator names its model kind and ``TrainConfig`` overrides), so
the plain VAE and its learned-noise sibling are two models, shared by every estimator that
reads them. Each fit is seeded by its own config, so the order of training does not matter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from vae_pipeline.core import batched  # batched.MAX_BATCH read at call time (tests shrink it)
from vae_pipeline.core.batched import (
    MAX_BATCH,
    batch_size_for,
    batchable,
    step_overhead,
    train_batched,
)
from vae_pipeline.core.covariance import REGISTRY, ModelKey, model_keys
from vae_pipeline.core.training import (
    TrainConfig,
    TrainResult,
    model_is_headline,
    model_is_headline_cvae,
    train_vae,
)
from vae_pipeline.core.warm_start import (
    WARM_EPOCHS,
    WARM_LR,
    no_worse_than_seed,
    sibling_state,
    warm_config,
)

# progress(model, epoch, total epochs) during a fit.
FitProgress = Callable[[ModelKey, int, int], None]
VAE_MODEL, CVAE_MODEL = ModelKey("vae"), ModelKey("cvae")


@dataclass(frozen=True)
class SiblingWarmStart:
    """Seed each learned-noise model from the same window's plain model of its kind and train
    it ``epochs`` at ``lr`` (the two share encoder and decoder, so a short fit suffices)."""

    epochs: int
    lr: float


@dataclass(frozen=True)
class FittedModels:
    """The trained models of one window by :class:`ModelKey`; ``trained``: those fitted here
    (not given), ``seconds``: their total training time."""

    models: Mapping[ModelKey, TrainResult]
    trained: tuple[ModelKey, ...] = ()
    seconds: float = 0.0

    def __getitem__(self, key: ModelKey) -> TrainResult:
        return self.models[key]

    def __contains__(self, key: object) -> bool:
        return key in self.models

    @property
    def vae(self) -> TrainResult:
        return self.models[VAE_MODEL]

    @property
    def cvae(self) -> TrainResult:
        return self.models[CVAE_MODEL]

    def for_estimator(self, name: str) -> TrainResult:
        """The model the registry says ``name`` reads."""
        key = REGISTRY[name].model_key
        if key is None:
            raise ValueError(f"{name!r} reads no trained model")
        return self.models[key]


@dataclass(frozen=True)
class WarmChains:
    """How a ranged run trains its Adam models (``vae_mlp``, the reference VAE / CVAE and their
    learned-noise siblings): as warm-start chains in lockstep. The range's windows (consecutive days) are cut into contiguous chains; each
    chain's first window is fitted cold (the one-day fit), and each later window starts from
    the model of the window before it in its chain and trains ``epochs`` at ``lr`` (see
    ``core.warm_start``), keeping its seed if it ended where the training gate would refuse it
    (``no_worse_than_seed``); the chains' k-th windows train as one batched model.

    Why: day d's window shares W - 1 days with day d - 1's, so the day before's model is a
    start a few epochs from this window's fit. A cold fit costs 300 epochs (the reference
    models) or 1,100-1,550 (``vae_mlp``, to convergence); a warm one ``epochs`` (100).

    How many chains (:meth:`segments`): no chain longer than ``length``, and as many as make
    the range cheapest to train. A range's cost is its rounds (one cold round of the cold
    epochs, then a warm round of ``epochs`` per further day of the longest chain) times the
    cost of a batched step over the chains; a step costs its windows' compute plus a fixed
    overhead (``core.batched.step_overhead``), and a batch holds at most ``batch`` windows.
    So a model whose cold fit is short (the reference models, 300 epochs, 3x a warm fit) on a
    small panel, where the overhead dominates, takes as many chains as fill a batch (a range
    within one batch: every window cold, the one-day fits), while ``vae_mlp`` (up to 3,000
    cold epochs, 30x) and any model on a large panel, where compute dominates, take the
    longest chains. Measured (``benchmarks/chain_reference.py``, 16 chained days): the chained
    reference models' covariances are as far from the one-day fits as the one-day fits with
    another seed are at N = 60 (median relative distance 0.17-0.39 vs 0.18-0.37) and on the
    S&P 500 panel at N = 100 (0.13-0.23 vs 0.19-0.25); at N = 500, where the 300-epoch fits are
    far from converged, within it for three of the four (0.25-0.46 vs 0.26-0.52), not for the
    reference CVAE (0.40 vs 0.13)."""

    epochs: int = WARM_EPOCHS
    lr: float = WARM_LR
    length: int = 16

    def segments(
        self,
        indices: list[int],
        batch: int = MAX_BATCH,
        overhead: float = 0.0,
        cold_epochs: int | None = None,
    ) -> list[list[int]]:
        """``indices`` (in day order) cut into contiguous chains of near-equal length, at most
        ``length`` each: the count that minimises the range's cost (see the class doc) for
        batches of ``batch`` windows, a step ``overhead`` (in windows' compute) and cold fits
        of ``cold_epochs`` (default 3x ``epochs``); on a tie, more chains (fewer warm days)."""
        n = len(indices)
        if not n:
            return []
        batch = max(1, int(batch))
        cold = 3 * self.epochs if cold_epochs is None else int(cold_epochs)
        warm = min(int(self.epochs), cold)

        def cost(m: int) -> float:
            chunks = -(-m // batch)
            rounds = cold + (-(-n // m) - 1) * warm
            return rounds * (chunks * overhead + m)

        fewest = -(-n // max(1, int(self.length)))
        n_chains = min(range(fewest, n + 1), key=lambda m: (cost(m), -m))
        return [[int(i) for i in part] for part in np.array_split(np.asarray(indices), n_chains)]


def chained(config: TrainConfig) -> bool:
    """Whether a ranged run trains ``config``'s model as :class:`WarmChains`: an Adam fit the
    batch covers (not an EM headline fit, which :func:`fit_model_range` fits window by window)."""
    em = config.fit == "converged" and model_is_headline(config)  # the VAE's and the CVAE's
    return batchable(config) and not em


# The run settings a cold fit takes; a field the settings object lacks keeps TrainConfig's default.
TRAIN_FIELDS = ("latent_dim", "beta", "epochs", "lr", "hidden", "seed", "device")


def cold_train_config(config, **overrides) -> TrainConfig:
    """A run's training settings (the pipeline's training resource, the settings' ``model``
    group, ...) as a cold fit's :class:`TrainConfig`, so every caller trains the same model
    from the same settings; ``overrides`` fill or replace fields (e.g. ``seed``)."""
    fields = {name: getattr(config, name) for name in TRAIN_FIELDS if hasattr(config, name)}
    return TrainConfig(**{**fields, **overrides}).validate()


def model_config(config: TrainConfig, key: ModelKey) -> TrainConfig:
    """``config`` with ``key``'s overrides (validated)."""
    return replace(config, **dict(key.overrides)).validate() if key.overrides else config


def _is_learned_noise_sibling(key: ModelKey) -> bool:
    return dict(key.overrides) == {"noise": "learned"}


def condition_count(regimes: np.ndarray) -> int:
    """One-hot width of a CVAE trained on ``regimes``: every label seen, and at least two."""
    return max(int(np.max(regimes)) + 1, 2)


def fit_model(
    key: ModelKey,
    window: pd.DataFrame,
    regimes: np.ndarray | None,
    config: TrainConfig,
    init_state: dict | None = None,
    n_conditions: int | None = None,
    progress: FitProgress | None = None,
) -> TrainResult:
    """Train the one model ``key`` names on ``window`` with ``config`` (which already carries
    ``key``'s overrides, see :func:`model_config`), optionally from ``init_state``. A CVAE kind
    trains on ``regimes`` (one label per window day)."""
    conditions = None
    if key.kind == "cvae":
        if regimes is None:
            raise ValueError(f"the {key.label} model needs the window's regime labels")
        conditions = np.asarray(regimes)
        n_conditions = n_conditions or condition_count(conditions)
    callback = None
    if progress is not None:

        def callback(epoch, total, recon, kl):
            progress(key, epoch, config.epochs)

    return train_vae(
        window,
        config,
        conditions=conditions,
        n_conditions=n_conditions,
        progress=callback,
        init_state=init_state,
    )


def fit_models(
    window: pd.DataFrame,
    regimes: np.ndarray | None,
    config: TrainConfig,
    names: Iterable[str] | None = None,
    given: Mapping[ModelKey, TrainResult] | None = None,
    warm: SiblingWarmStart | None = None,
    progress: FitProgress | None = None,
) -> FittedModels:
    """Every model the estimators ``names`` (default: the whole registry) read, trained on
    ``window``; ``given`` models (e.g. the pipeline's stored VAE / CVAE of the day) are used
    as they are. The CVAE kinds train on ``regimes`` (one label per window day). With ``warm``,
    a learned-noise model starts from its plain sibling (which must be given or trained here).
    """
    names = list(REGISTRY) if names is None else list(names)
    keys = model_keys(names)
    models: dict[ModelKey, TrainResult] = dict(given or {})
    trained: list[ModelKey] = []
    seconds = 0.0
    # plain models first, so a warm-started sibling finds its seed
    for key in sorted(keys, key=lambda k: bool(k.overrides)):
        if key in models:
            continue
        cfg, state = model_config(config, key), None
        if warm is not None and _is_learned_noise_sibling(key) and key.base in models:
            cfg = warm_config(cfg, warm.epochs, warm.lr)
            state = sibling_state(models[key.base])
        base = models.get(ModelKey(key.kind))
        models[key] = fit_model(
            key,
            window,
            regimes,
            cfg,
            init_state=state,
            n_conditions=base.n_conditions if base is not None and key.kind == "cvae" else None,
            progress=progress,
        )
        seconds += models[key].seconds
        trained.append(key)
    return FittedModels(models=models, trained=tuple(trained), seconds=seconds)


def _range_conditions(key: ModelKey, regimes: list[np.ndarray | None]) -> list[np.ndarray] | None:
    if key.kind != "cvae":
        return None
    if any(r is None for r in regimes):
        raise ValueError(f"the {key.label} model needs every window's regime labels")
    return [np.asarray(r) for r in regimes]


def _group_windows(windows: list[pd.DataFrame], labels: list[np.ndarray] | None) -> list[list[int]]:
    """Window indices grouped by what a batch shares: the column set (in order), the number
    of days, and a CVAE's condition count; each group in window order."""
    groups: dict[tuple, list[int]] = {}
    for i, w in enumerate(windows):
        shape_key = (tuple(map(str, w.columns)) if isinstance(w, pd.DataFrame) else w.shape[1],)
        shape_key += (len(w), condition_count(labels[i]) if labels is not None else 0)
        groups.setdefault(shape_key, []).append(i)
    return list(groups.values())


def fit_model_range(
    key: ModelKey,
    windows: list[pd.DataFrame],
    regimes: list[np.ndarray | None],
    config: TrainConfig,
    progress: FitProgress | None = None,
    chains: WarmChains | None = None,
) -> list[TrainResult]:
    """The model ``key`` trained on each of ``windows`` (consecutive days' training
    windows of a ranged run; ``regimes[i]`` labels ``windows[i]`` for a CVAE kind), one
    :class:`TrainResult` per window, each as :func:`fit_model` would give it (within the
    optimiser's noise). ``config`` carries ``key``'s overrides (see :func:`model_config`).

    - The Adam models (the reference VAE / CVAE, their learned-noise siblings, ``vae_mlp``):
      the windows with the same names, length and condition count train as one batched model
      (:func:`core.batched.train_batched`): each window's model starts from the one-window
      fit's seeded weights and draws the same noise, so the results equal one-window fits up
      to float rounding. Configurations the batch does not cover are fitted window by window.
    - With ``chains``, a model run to convergence by Adam (:func:`chained`: ``vae_mlp``) is
      trained as :class:`WarmChains` instead: each chain's first window as the one-window fit,
      the others warm-started from the window before (``result.seeded_by``: its index).
    - The headline models fitted by EM (``vae``, ``cvae``): window by window, each exactly the
      one-day fit (same k, pooling and weights; see :func:`_em_fits` for why not warm starts).

    ``progress(key, epoch, total)`` is called per batched step (Adam) or per window (EM)."""
    if len(windows) != len(regimes):
        raise ValueError(f"{len(windows)} windows but {len(regimes)} regime label arrays")
    if not windows:
        return []
    labels = _range_conditions(key, list(regimes))
    n_cond = [condition_count(r) for r in labels] if labels is not None else [0] * len(windows)
    headline = (
        config.fit == "converged"
        and not config.val_fraction
        and any(model_is_headline(config, c) or model_is_headline_cvae(config, c) for c in n_cond)
    )
    if headline:
        return _em_fits(key, windows, labels, n_cond, config, progress)
    if not batchable(config):
        return [
            fit_model(key, w, r, config, progress=progress)
            for w, r in zip(windows, regimes, strict=True)
        ]
    results: list[TrainResult | None] = [None] * len(windows)
    on_step = None
    if progress is not None:

        def on_step(epoch: int, total: int) -> None:
            progress(key, epoch, total)

    for group in _group_windows(windows, labels):
        if chains is not None and chained(config):
            _fit_chains(group, windows, labels, n_cond, config, chains, on_step, results)
            continue
        fitted = train_batched(
            [windows[i] for i in group],
            config,
            conditions=None if labels is None else [labels[i] for i in group],
            n_conditions=None if labels is None else n_cond[group[0]],
            progress=on_step,
        )
        for i, res in zip(group, fitted, strict=True):
            results[i] = res
    return results


def _fit_chains(group, windows, labels, n_cond, config, chains, on_step, results) -> None:
    """:class:`WarmChains` over the windows ``group`` (one batch shape, day order), in place."""
    t, n = windows[group[0]].shape
    segments = chains.segments(
        group,
        batch=batch_size_for(t, n, batched.MAX_BATCH),
        overhead=step_overhead(t, n, config.device),
        cold_epochs=config.epochs,
    )
    warm = warm_config(config, chains.epochs, chains.lr)
    for k in range(max(len(seg) for seg in segments)):
        todo = [(seg[k], seg[k - 1] if k else None) for seg in segments if len(seg) > k]
        idx = [i for i, _ in todo]
        states = None
        if k:  # seeded by the window before in the chain (its kept weights)
            states = [{n: v.detach().clone() for n, v in results[p].model.state_dict().items()}
                      for _, p in todo]  # fmt: skip
        fitted = train_batched(
            [windows[i] for i in idx],
            warm if k else config,
            conditions=None if labels is None else [labels[i] for i in idx],
            n_conditions=None if labels is None else n_cond[idx[0]],
            progress=on_step,
            init_states=states,
        )
        for row, ((i, previous), res) in enumerate(zip(todo, fitted, strict=True)):
            res.seeded_by = previous
            results[i] = res if states is None else no_worse_than_seed(res, states[row])


def _em_fits(key, windows, labels, n_cond, config, progress) -> list[TrainResult]:
    """The EM headline fits, window by window, each the one-day fit (cold). Why not warm
    starts: sklearn's FA stops on an absolute log-likelihood tolerance (``EM_TOL``) a few
    iterations in, short of the optimum, so the solution depends on where EM starts; started
    from the previous window's noise variances it chose another k on 1 day in 6 and moved the
    covariance by up to 6 % (S&P 500, N = 100), for no time saved (0.073 -> 0.058 s a window
    at N = 100, 0.75 -> 0.68 s at N = 471). The one-day fit itself was made cheaper instead
    (``core.converged.heldout_evidence`` by Woodbury)."""
    results = []
    for i, w in enumerate(windows):
        results.append(
            train_vae(
                w,
                config,
                conditions=None if labels is None else labels[i],
                n_conditions=n_cond[i] or None,
            )
        )
        if progress is not None:
            progress(key, i + 1, len(windows))
    return results
