"""Batched training across windows (core.batched via core.refit.fit_model_range): every model
kind's batched fit equals its one-window fit (weights, loss history, best epoch, stop), CVAE
conditions, mixed column sets, and the seam's errors."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch

from vae_pipeline.core import batched
from vae_pipeline.core.batched import batch_size_for, train_batched
from vae_pipeline.core.converged import heldout_evidence, new_model, set_to_em_optimum
from vae_pipeline.core.covariance import ModelKey, model_keys
from vae_pipeline.core.refit.models import fit_model, fit_model_range, model_config
from vae_pipeline.core.training import TrainConfig

SEED = 42
T, N, B = 60, 8, 3
# Float rounding (batched vs one-window kernels) after tens to hundreds of Adam steps.
WEIGHT_ATOL = 1e-4
LOSS_RTOL = 1e-5


def returns(t: int = T + B, n: int = N, seed: int = SEED) -> pd.DataFrame:
    """A two-factor panel with columns S0..S{n-1}."""
    rng = np.random.default_rng(seed)
    loadings = rng.normal(0.0, 0.6, (n, 2))
    x = rng.standard_normal((t, 2)) @ loadings.T * 0.01 + rng.standard_normal((t, n)) * 0.01
    idx = pd.bdate_range("2021-01-01", periods=t, name="date")
    return pd.DataFrame(x, index=idx, columns=[f"S{i}" for i in range(n)])


def windows(panel: pd.DataFrame, count: int = B, length: int = T) -> list[pd.DataFrame]:
    return [panel.iloc[i : i + length] for i in range(count)]


def labels(count: int = B, length: int = T, seed: int = SEED) -> list[np.ndarray]:
    """Two regimes in runs (as a trend signal gives them), shifting by one day per window."""
    path = (np.sin(np.arange(length + count) / 6.0 + seed) > 0).astype(int)
    return [path[i : i + length] for i in range(count)]


def assert_same_fit(one, batched, loss_rtol=LOSS_RTOL, weight_atol=WEIGHT_ATOL) -> None:
    assert batched.n_conditions == one.n_conditions
    assert batched.config == one.config
    assert batched.best_epoch == one.best_epoch
    assert batched.stop_reason == one.stop_reason
    assert list(batched.history.columns) == list(one.history.columns)
    assert len(batched.history) == len(one.history)
    np.testing.assert_allclose(
        batched.history[["total", "recon", "kl"]].to_numpy(),
        one.history[["total", "recon", "kl"]].to_numpy(),
        rtol=loss_rtol,
        atol=1e-6,
    )
    np.testing.assert_array_equal(batched.standardiser.mean_, one.standardiser.mean_)
    assert batched.standardiser.columns_ == one.standardiser.columns_
    assert batched.model.config() == one.model.config()
    a, b = one.model.state_dict(), batched.model.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(b[name], a[name], atol=weight_atol, rtol=0, msg=name)


ADAM_MODELS = {  # registry name -> the test's config changes (tiny, fast)
    "vae_reference": {"epochs": 40},
    "vae_hetero": {"epochs": 40},
    "cvae_reference": {"epochs": 40},
    "cvae_hetero": {"epochs": 40},
    # the convergence rule stops each window at its own epoch: per-model stopping
    "vae_mlp": {"epochs": 600},
}


@pytest.mark.parametrize("name", list(ADAM_MODELS))
def test_batched_adam_fit_equals_one_window_fits(name):
    key = model_keys([name])[0]
    config = replace(model_config(TrainConfig(hidden=8), key), **ADAM_MODELS[name])
    ws = windows(returns())
    regimes = labels() if key.kind == "cvae" else [None] * B
    one = [fit_model(key, w, r, config) for w, r in zip(ws, regimes, strict=True)]
    batched = fit_model_range(key, ws, regimes, config)
    assert len(batched) == B
    for o, b in zip(one, batched, strict=True):
        assert_same_fit(o, b)
    if name == "vae_mlp":  # stopped at different epochs, each by the rule (or ran to the cap)
        stopped = [len(r.history) for r in batched if r.stop_reason == "converged"]
        assert len(stopped) >= 2 and max(stopped) < config.epochs
        assert len({len(r.history) for r in batched}) == B
    if key.overrides and ("noise", "learned") in key.overrides:  # kept its best epoch
        assert all(r.best_epoch == int(r.history["total"].idxmin()) + 1 for r in batched)


@pytest.mark.parametrize("name", ["vae", "cvae"])
def test_em_headline_range_equals_one_day_fits(name):
    """The EM headline fits of a range are the one-day fits: same k, same covariance."""
    key = model_keys([name])[0]
    config = model_config(TrainConfig(), key)
    ws = windows(returns(t=120 + B, n=16), length=120)
    regimes = labels(length=120) if key.kind == "cvae" else [None] * B
    ranged = fit_model_range(key, ws, regimes, config)
    for w, r, res in zip(ws, regimes, ranged, strict=True):
        one = fit_model(key, w, r, config)
        assert res.config.latent_dim == one.config.latent_dim
        assert res.heldout_elbo == one.heldout_elbo
        assert res.regime_pooling == one.regime_pooling
        for a, b in zip(
            one.model.state_dict().values(), res.model.state_dict().values(), strict=True
        ):
            torch.testing.assert_close(b, a, atol=0, rtol=0)


def test_heldout_evidence_by_woodbury_equals_the_dense_evidence():
    """The held-out ELBO per number of latents equals the dense N x N Gaussian evidence."""
    x = torch.from_numpy(returns(t=150, n=20).to_numpy() * 100).float()
    config = TrainConfig(encoder="linear", noise="learned")
    model = new_model(20, 5, config)
    set_to_em_optimum(model, x[:100].double().numpy(), 1000, SEED)
    order = np.arange(5)[::-1].copy()
    got = heldout_evidence(model, order, x[100:])
    with torch.no_grad():
        w = model.decoder.weight.double().numpy()[:, order]
        psi = np.exp(model.noise_logvar().double().numpy()) + (w * w).sum(axis=1)
        xc = x[100:].double().numpy() - model.decoder.bias.double().numpy()
    for j in range(6):
        if j:
            psi = psi - w[:, j - 1] ** 2
        cov = w[:, :j] @ w[:, :j].T + np.diag(np.maximum(psi, 1e-8))
        sign, logdet = np.linalg.slogdet(cov)
        quad = np.einsum("ti,ij,tj->", xc, np.linalg.inv(cov), xc) / xc.shape[0]
        assert sign > 0
        assert got[j] == pytest.approx(-0.5 * (logdet + quad), rel=1e-10)


def test_cvae_condition_counts_are_batched_separately():
    """A window that sees a third regime gets a three-condition CVAE, as its one-window fit."""
    key = ModelKey("cvae")
    config = TrainConfig(hidden=8, epochs=20)
    ws = windows(returns())
    regimes = labels()
    regimes[1] = regimes[1].copy()
    regimes[1][:5] = 2
    batched = fit_model_range(key, ws, regimes, config)
    assert [r.n_conditions for r in batched] == [2, 3, 2]
    for w, r, res in zip(ws, regimes, batched, strict=True):
        assert_same_fit(fit_model(key, w, r, config), res)


def test_mixed_column_sets_are_grouped_and_kept_in_order():
    """Names entering/leaving the universe: each window is fitted on its own columns."""
    panel = returns(n=N + 1)
    ws = windows(panel)
    ws[1] = ws[1].drop(columns=["S3"])  # a name missing that day
    ws[2] = ws[2][["S8", *[f"S{i}" for i in range(N)]]]  # another order of the names
    key = ModelKey("vae")
    config = TrainConfig(hidden=8, epochs=20)
    batched = fit_model_range(key, ws, [None] * B, config)
    assert [r.model.n_inputs for r in batched] == [N + 1, N, N + 1]
    for w, res in zip(ws, batched, strict=True):
        assert res.standardiser.columns_ == list(w.columns)
        assert_same_fit(fit_model(key, w, None, config), res)


def test_progress_is_reported_per_batched_step():
    calls = []
    key = ModelKey("vae")
    fit_model_range(
        key, windows(returns()), [None] * B, TrainConfig(hidden=8, epochs=7),
        progress=lambda k, e, total: calls.append((k, e, total)),
    )  # fmt: skip
    assert calls == [(key, e, 7) for e in range(1, 8)]


def test_fit_model_range_errors():
    ws = windows(returns())
    with pytest.raises(ValueError, match="3 windows but 2 regime"):
        fit_model_range(ModelKey("vae"), ws, [None, None], TrainConfig(epochs=2))
    with pytest.raises(ValueError, match="regime labels"):
        fit_model_range(ModelKey("cvae"), ws, [None] * B, TrainConfig(epochs=2))
    assert fit_model_range(ModelKey("vae"), [], [], TrainConfig(epochs=2)) == []
    with pytest.raises(ValueError, match="one shape"):
        train_batched([ws[0], ws[1].iloc[:-1]], TrainConfig(epochs=2))
    with pytest.raises(ValueError, match="validation"):
        train_batched(ws, TrainConfig(epochs=2, val_fraction=0.2))


def test_unbatchable_configs_fall_back_to_the_one_window_loop():
    """A validation tail with patience is not batched, and still gives the one-window fits."""
    key = ModelKey("vae")
    config = TrainConfig(hidden=8, epochs=15, val_fraction=0.2, patience=3)
    ws = windows(returns())
    ranged = fit_model_range(key, ws, [None] * B, config)
    for w, res in zip(ws, ranged, strict=True):
        one = fit_model(key, w, None, config)
        assert "val_total" in res.history
        pd.testing.assert_frame_equal(res.history, one.history)


def test_batch_size_bounds_memory():
    assert batch_size_for(504, 500) * 10 * 4 * 504 * 500 <= 1 << 30
    assert batch_size_for(60, 8) == 64
    assert batch_size_for(10**6, 10**4) == 1


def test_windows_beyond_one_chunk_match():
    """Ranges longer than one batch are trained chunk by chunk, in order."""
    key = ModelKey("vae")
    config = TrainConfig(hidden=8, epochs=10)
    ws = windows(returns(t=T + 5), count=5)
    out = train_batched(ws, config, max_batch=2)
    for w, res in zip(ws, out, strict=True):
        assert_same_fit(fit_model(key, w, None, config), res)


# -- warm-start chains (a ranged run's vae_mlp) ------------------------------------------
def test_warm_chains_cut_a_range_into_contiguous_near_equal_chains():
    from vae_pipeline.core.refit.models import WarmChains

    assert WarmChains(length=3).segments(list(range(7)), batch=1) == [[0, 1, 2], [3, 4], [5, 6]]
    assert WarmChains(length=16).segments([4, 5, 6], batch=1) == [[4, 5, 6]]
    assert WarmChains(length=1).segments([0, 1], batch=1) == [[0], [1]]


def test_the_chain_count_minimises_the_ranges_batched_steps():
    """As many chains as make the range cheapest (at most ``length`` days each): short cold
    fits on a small panel (the step's overhead dominates) fill the batch, a range within one
    batch stays cold; long cold fits (``vae_mlp``) or a large panel (compute dominates) take
    the longest chains."""
    from vae_pipeline.core.batched import step_overhead
    from vae_pipeline.core.refit.models import WarmChains

    chains = WarmChains(epochs=100, length=16)

    def layout(n_names, count, cold):
        segments = chains.segments(list(range(count)), batch=batch_size_for(504, n_names),
                                   overhead=step_overhead(504, n_names, "cpu"),
                                   cold_epochs=cold)  # fmt: skip
        assert sum(segments, []) == list(range(count))  # contiguous, in order, each once
        return len(segments), max(map(len, segments))

    assert layout(60, 22, 300) == (22, 1)  # a 1-day backfill's decision windows: all cold
    assert layout(60, 271, 300) == (55, 5)  # a year, reference models: one batch of chains
    assert layout(60, 271, 3000) == (17, 16)  # a year, vae_mlp: the longest chains
    assert layout(500, 271, 300) == (21, 13)  # batches of 10: compute dominates
    # no overhead at all: the fewest chains the length allows
    assert len(chains.segments(list(range(271)), batch=64, overhead=0.0)) == 17


def test_every_batched_adam_model_is_chained_and_the_em_headline_fits_are_not():
    from vae_pipeline.core.refit.models import chained

    configs = {name: model_config(TrainConfig(), model_keys([name])[0]) for name in
               ["vae_mlp", "vae_reference", "vae_hetero", "cvae_reference", "cvae_hetero",
                "vae", "cvae"]}  # fmt: skip
    assert {n for n, c in configs.items() if chained(c)} == set(ADAM_MODELS)
    # a configuration the batch does not cover is fitted window by window, cold
    assert not chained(replace(configs["vae_reference"], batch_size=64))


def test_a_chain_is_its_cold_head_then_one_window_warm_fits_from_the_day_before(monkeypatch):
    """Each chain's first window is the cold one-window fit; every later window is the
    one-window warm fit (``train_vae(init_state=...)``) from its predecessor's kept weights,
    trained ``epochs`` at ``lr``."""
    from vae_pipeline.core.refit.models import WarmChains
    from vae_pipeline.core.training import train_vae
    from vae_pipeline.core.warm_start import no_worse_than_seed, warm_config

    monkeypatch.setattr(batched, "MAX_BATCH", 2)  # 5 windows outgrow a batch: 2 chains
    key = model_keys(["vae_mlp"])[0]
    config = replace(model_config(TrainConfig(hidden=8), key), epochs=600)
    count = 5
    ws = windows(returns(t=T + count), count=count)
    chains = WarmChains(epochs=40, lr=1e-2, length=3)
    fits = fit_model_range(key, ws, [None] * count, config, chains=chains)
    assert [f.seeded_by for f in fits] == [None, 0, 1, None, 3]
    # (hundreds of steps of the MLP decoder: the batch's expanded loss and the one-window
    # loop's generic one round differently, so 1e-4 here)
    for head in (0, 3):
        assert_same_fit(fit_model(key, ws[head], None, config), fits[head], 1e-4, 1e-3)
        assert len(fits[head].history) > 40  # a cold fit runs past the warm budget
    warm = warm_config(config, 40, 1e-2)
    for i in (1, 2, 4):
        seed = {k: v.clone() for k, v in fits[i - 1].model.state_dict().items()}
        one = no_worse_than_seed(train_vae(ws[i], warm, init_state=seed), seed)
        assert_same_fit(one, fits[i], 1e-4, 1e-3)
        assert len(fits[i].history) <= 40  # the warm budget, not the cold one
    # a seeded window starts where its predecessor ended: its first loss is near that fit's
    # kept loss (one day in 60 changed), well below a cold start's on the same window
    kept = fits[0].history["total"].iloc[fits[0].best_epoch - 1]
    first = fits[1].history["total"].iloc[0]
    assert first <= 1.3 * kept and first < 0.7 * fit_model(key, ws[1], None, config).history["total"].iloc[0]


@pytest.mark.parametrize("name", ["vae_reference", "cvae_hetero"])
def test_a_fixed_epoch_chain_is_its_cold_head_then_warm_fits_of_the_warm_budget(name, monkeypatch):
    """The reference models (a fixed number of epochs) chain the same way: the head is the
    cold one-day fit (all its epochs), each later window the one-window warm fit of ``epochs``
    at ``lr`` from the window before's kept weights."""
    from vae_pipeline.core.refit.models import WarmChains
    from vae_pipeline.core.warm_start import no_worse_than_seed, warm_config

    monkeypatch.setattr(batched, "MAX_BATCH", 1)  # one window a batch: one chain of four
    key = model_keys([name])[0]
    config = replace(model_config(TrainConfig(hidden=8), key), epochs=60)
    count = 4
    ws = windows(returns(t=T + count), count=count)
    regimes = labels(count=count) if key.kind == "cvae" else [None] * count
    chains = WarmChains(epochs=20, lr=1e-2, length=count)
    fits = fit_model_range(key, ws, regimes, config, chains=chains)
    assert [f.seeded_by for f in fits] == [None, 0, 1, 2]
    assert_same_fit(fit_model(key, ws[0], regimes[0], config), fits[0])
    assert len(fits[0].history) == 60
    warm = warm_config(config, 20, 1e-2)
    for i in range(1, count):
        seed = {k: v.clone() for k, v in fits[i - 1].model.state_dict().items()}
        one = no_worse_than_seed(fit_model(key, ws[i], regimes[i], warm, init_state=seed), seed)
        assert_same_fit(one, fits[i])
        assert len(fits[i].history) == 20


def test_a_warm_fit_that_ends_above_its_seed_returns_the_seed():
    from vae_pipeline.core.warm_start import (
        WARM_LOSS_TOLERANCE,
        kept_loss,
        no_worse_than_seed,
        warm_config,
    )

    key = model_keys(["vae_mlp"])[0]
    config = replace(model_config(TrainConfig(hidden=8), key), epochs=200)
    ws = windows(returns(t=T + 2), count=2)
    seed = {k: v.clone() for k, v in fit_model(key, ws[0], None, config).model.state_dict().items()}
    # far too high a rate for a seeded fit: it is thrown uphill and never gets back
    uphill = fit_model(key, ws[1], None, warm_config(config, 30, 0.5), init_state=seed)
    assert kept_loss(uphill) > uphill.history["total"].iloc[0] * (1 + WARM_LOSS_TOLERANCE)
    kept = no_worse_than_seed(uphill, seed)
    assert kept.best_epoch == 0 and kept_loss(kept) == kept.history["total"].iloc[0]
    for name, value in kept.model.state_dict().items():
        torch.testing.assert_close(value, seed[name])
    # a fit whose kept weights are below its seed's loss is returned as it is
    fitted = fit_model(key, ws[1], None, warm_config(config, 30, 1e-3), init_state=seed)
    falling = replace(fitted, history=fitted.history.assign(total=np.linspace(5.0, 4.0, 30)))
    weights = {k: v.clone() for k, v in falling.model.state_dict().items()}
    assert no_worse_than_seed(falling, seed).best_epoch == fitted.best_epoch != 0
    # one that ended above its seed by less than the gate's tolerance (a single draw's noise) too
    flat = replace(fitted, history=fitted.history.assign(total=np.linspace(5.0, 5.05, 30)))
    assert no_worse_than_seed(flat, seed) is flat and flat.best_epoch == fitted.best_epoch
    for name, value in falling.model.state_dict().items():
        torch.testing.assert_close(value, weights[name])
