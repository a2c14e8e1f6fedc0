"""Warm starts: the seeds (pure layer) and the option in the asset graph (lineage, metadata)."""

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from dagster import AssetKey, DagsterInstance, TimeWindowPartitionMapping

from vae_pipeline.core.training import TrainConfig, train_vae
from vae_pipeline.core.warm_start import (
    WARM_LR,
    previous_state,
    sibling_state,
    warm_config,
)
from vae_pipeline_tests.conftest import tiny_settings

CFG = TrainConfig(latent_dim=2, hidden=16, epochs=150, seed=42, device="cpu")


def _panel(n_days: int = 121, n_names: int = 8) -> pd.DataFrame:
    """Two-factor returns (seed 42): day t's window is rows [t - 119, t]."""
    rng = np.random.default_rng(42)
    f = rng.normal(0, 0.01, (n_days, 2))
    b = rng.normal(1.0, 0.5, (2, n_names))
    x = f @ b + rng.normal(0, 0.005, (n_days, n_names))
    return pd.DataFrame(x, columns=[f"S{i}" for i in range(n_names)])


def test_previous_state_needs_the_same_names_and_shape():
    window = _panel().iloc[:120]
    fit = train_vae(window, replace_epochs(CFG, 5))
    state, why = previous_state(fit, window.columns, CFG)
    assert why == "ok" and set(state) == set(fit.model.state_dict())
    assert previous_state(None, window.columns, CFG) == (None, "no earlier model stored")
    state, why = previous_state(fit, list(window.columns[::-1]), CFG)
    assert state is None and "universe changed" in why
    state, why = previous_state(fit, window.columns[:-1], CFG)
    assert state is None and "8 -> 7 names" in why
    state, why = previous_state(fit, window.columns, replace_epochs(CFG, 5, latent_dim=3))
    assert state is None and "shape changed" in why


def replace_epochs(cfg: TrainConfig, epochs: int, **changes) -> TrainConfig:
    from dataclasses import replace

    return replace(cfg, epochs=epochs, **changes)


def test_a_warm_refit_of_the_next_window_stays_at_the_cold_optimum():
    panel = _panel()
    yesterday, today = panel.iloc[:120], panel.iloc[1:121]
    seed, _ = previous_state(train_vae(yesterday, CFG), today.columns, CFG)
    cold = train_vae(today, CFG)
    warm = train_vae(today, warm_config(CFG, 40, WARM_LR), init_state=seed)
    first, last = warm.history["total"].iloc[0], warm.history["total"].iloc[-1]
    assert len(warm.history) == 40
    assert last <= first * 1.02  # began near the optimum and did not leave it
    assert abs(last - cold.history["total"].iloc[-1]) < 0.05 * abs(cold.history["total"].iloc[-1])
    # the seed matters: 40 epochs from the seeded init alone end far above it
    unseeded = train_vae(today, warm_config(CFG, 40, WARM_LR))
    assert unseeded.history["total"].iloc[-1] > last + 0.05 * abs(last)
    # fresh Adam at the cold rate throws the seed away first (why warm_lr is lower)
    jumpy = train_vae(today, warm_config(CFG, 40, CFG.lr), init_state=seed)
    assert jumpy.history["total"].iloc[:10].max() > warm.history["total"].iloc[:10].max()


def test_a_learned_noise_fit_starts_from_the_fixed_noise_fit():
    from dataclasses import replace

    window = _panel().iloc[:120]
    fixed = train_vae(window, CFG)
    state = sibling_state(fixed)
    assert torch.equal(state["decoder.weight"], fixed.model.state_dict()["decoder.weight"])
    hetero = train_vae(window, warm_config(replace(CFG, noise="learned"), 30), init_state=state)
    assert np.isfinite(hetero.history["total"]).all()
    assert hetero.history["total"].iloc[-1] < hetero.history["total"].iloc[0]


def _defs(tmp_path, warm: bool):
    from vae_pipeline.pipeline.definitions import build_definitions

    settings = tiny_settings(tmp_path / "warm.duckdb", warm_start=warm)
    return settings, build_definitions(settings)


def test_the_self_dependency_exists_only_with_the_option(tmp_path):
    _, defs = _defs(tmp_path, warm=True)
    graph = defs.resolve_asset_graph()
    for name in ("trained_vae_reference", "trained_cvae_reference"):
        key = AssetKey(name)
        assert key in graph.get(key).parent_keys
        mapping = graph.get_partition_mapping(key, key)
        assert isinstance(mapping, TimeWindowPartitionMapping)
        assert (mapping.start_offset, mapping.end_offset) == (-5, -1)
    _, cold = _defs(tmp_path, warm=False)
    graph = cold.resolve_asset_graph()
    assert (
        AssetKey("trained_vae_reference")
        not in graph.get(AssetKey("trained_vae_reference")).parent_keys
    )


# the models that chain day to day (the headline trained_vae is fitted by EM, always cold)
MODELS = ["standardised_panel", "trained_vae_reference", "trained_cvae_reference"]


def _run(defs, instance, names, **kwargs):
    job = defs.resolve_implicit_global_asset_job_def()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return job.execute_in_process(
            instance=instance, asset_selection=[AssetKey(n) for n in names], **kwargs
        )


def _with_history(settings, defs) -> DagsterInstance:
    """An instance whose run has ingested the raw history up to 2024-06-03 (one ranged run)."""
    from vae_pipeline.pipeline.runner import HISTORY_ASSETS, RANGE_END_TAG, RANGE_START_TAG

    instance = DagsterInstance.ephemeral()
    history = {RANGE_START_TAG: settings.data.start, RANGE_END_TAG: "2024-06-03"}
    assert _run(defs, instance, HISTORY_ASSETS, tags=history).success
    return instance


def _metadata(result, name: str) -> dict:
    for event in result.get_asset_materialization_events():
        if event.materialization.asset_key == AssetKey(name):
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"{name} not materialised")


def test_consecutive_partitions_chain_warm_starts(tmp_path):
    settings, defs = _defs(tmp_path, warm=True)
    instance = _with_history(settings, defs)
    config = {"resources": {"training": {"config": {"warm_epochs": 7}}}}
    # Friday, then Monday (the weekend holds no partitions): Monday seeds from Friday
    first = _run(defs, instance, MODELS, partition_key="2024-05-31", run_config=config)
    second = _run(defs, instance, MODELS, partition_key="2024-06-03", run_config=config)
    assert first.success and second.success
    for name in ("trained_vae_reference", "trained_cvae_reference"):
        cold, warm = _metadata(first, name), _metadata(second, name)
        assert cold["warm_started_from"] == "cold: no model stored in the previous week"
        assert cold["epochs_run"] == settings.model.epochs
        assert warm["warm_started_from"] == "2024-05-31"
        assert warm["epochs_run"] == 7


def test_a_ranged_run_keeps_the_per_day_warm_start_chain(tmp_path):
    from vae_pipeline.pipeline.runner import RANGE_END_TAG, RANGE_START_TAG
    from vae_pipeline.store import DuckDBStore, ModelStore

    settings, defs = _defs(tmp_path, warm=True)
    instance = _with_history(settings, defs)
    config = {"resources": {"training": {"config": {"warm_epochs": 7}}}}
    # one run over Friday and Monday: Monday seeds from the Friday fitted in the same run
    ranged = {RANGE_START_TAG: "2024-05-31", RANGE_END_TAG: "2024-06-03"}
    result = _run(defs, instance, MODELS, tags=ranged, run_config=config)
    assert result.success
    models = ModelStore(DuckDBStore(settings.storage.db_path, read_only=True))
    for name in ("trained_vae_reference", "trained_cvae_reference"):
        last = _metadata(result, name)  # a ranged output carries its last day's metadata
        assert last["warm_started_from"] == "2024-05-31" and last["epochs_run"] == 7
        assert last["days_stored"] == 2
        stored = models.load_models(name)
        assert sorted(stored) == ["2024-05-31", "2024-06-03"]
        assert len(stored["2024-05-31"].history) == settings.model.epochs  # the cold first day
        assert len(stored["2024-06-03"].history) == 7


def test_warm_start_without_its_lineage_is_refused(tmp_path):
    settings, defs = _defs(tmp_path, warm=False)
    instance = _with_history(settings, defs)
    config = {"resources": {"training": {"config": {"warm_start": True}}}}
    result = _run(defs, instance, MODELS, partition_key="2024-06-03", run_config=config,
                  raise_on_error=False)  # fmt: skip
    assert not result.success
    errors = " ".join(str(e.step_failure_data.error) for e in result.get_step_failure_events())
    assert "VAE_PIPELINE_WARM_START=1" in errors


@pytest.mark.parametrize("value, expected", [("1", True), ("0", False), ("", False)])
def test_the_option_is_read_from_the_environment(value, expected):
    from vae_pipeline.pipeline.resources import TrainingResource
    from vae_pipeline.settings import PipelineSettings

    settings = PipelineSettings.from_env({"VAE_PIPELINE_WARM_START": value})
    assert settings.model.warm_start is expected
    assert TrainingResource.from_settings(settings).warm_start is expected
