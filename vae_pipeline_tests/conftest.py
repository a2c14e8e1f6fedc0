"""Shared fixtures: a tiny, seeded pipeline configuration and a materialised partition."""

import os

import pytest

# Two cores: keep torch from oversubscribing them when pytest and DuckDB run too.
os.environ.setdefault("OMP_NUM_THREADS", "2")
# The tests configure the pipeline themselves: a developer's exported VAE_PIPELINE_* variables or
# .env must not leak into them (a test that wants a variable sets it with monkeypatch).
for _name in [n for n in os.environ if n.startswith("VAE_PIPELINE_")]:
    del os.environ[_name]
os.environ["VAE_PIPELINE_ENV_FILE"] = os.devnull

from vae_pipeline.settings import PipelineSettings  # noqa: E402

DAY = "2024-06-03"  # a Monday, a trading day
DECISION = "2024-05-24"  # DAY - 5 trading days (Memorial Day, 2024-05-27, in between)


def daily_keys(defs) -> list:
    """Every asset the daily refit materialises (the on-demand ones, e.g. beta_sweep, left out)."""
    from vae_pipeline.pipeline.assets import ON_DEMAND

    keys = defs.resolve_asset_graph().get_all_asset_keys()
    return [k for k in keys if k.path[-1] not in ON_DEMAND]


TINY = dict(start="2024-01-02", n_names=20, window=60, horizon=5, epochs=30, min_names=5, seed=42)


def tiny_settings(db_path, **overrides) -> PipelineSettings:
    """20 names, W = 60, H = 5, 30 epochs: the whole graph in seconds."""
    return PipelineSettings(**{"db_path": db_path, **TINY, **overrides})


def tiny_env(**overrides) -> dict[str, str]:
    """:func:`tiny_settings` as ``VAE_PIPELINE_*`` variables (what the CLI and the code
    locations read), ``overrides`` by field name (e.g. ``horizon=2``)."""
    return {f"VAE_PIPELINE_{k.upper()}": str(v) for k, v in {**TINY, **overrides}.items()}


@pytest.fixture(scope="session")
def materialised(tmp_path_factory):
    """One partition materialised end to end (history, decision date, the day)."""
    from dagster import DagsterInstance

    from vae_pipeline.pipeline.definitions import build_definitions
    from vae_pipeline.pipeline.runner import materialise_day

    settings = tiny_settings(tmp_path_factory.mktemp("db") / "pipeline.duckdb")
    defs = build_definitions(settings)
    instance = DagsterInstance.ephemeral()
    results = materialise_day(defs, DAY, settings, instance=instance)
    return settings, defs, instance, results
