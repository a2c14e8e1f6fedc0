"""Ranged single runs (a backfill) against one-day runs, and a gate refusing one day of a range.

The ranged run trains a range's windows together (``core.refit.fit_model_range``), so its models
may differ from the one-day fits within the optimiser's noise. The tolerance: the estimators
that train nothing (sample, Ledoit-Wolf, ..., the oracle) give the same realised vol to 1e-9;
those reading the EM headline models (fitted window by window, exactly the one-day fits) within
BATCH_RTOL; the Adam models (``vae_mlp``, the reference VAE / CVAE and their learned-noise
siblings) train as warm-start chains, as many as make the range cheapest (each day after
a chain's first from the day before, not cold), so their days are compared in distribution
(median within CHAINED_MEDIAN_RTOL, or twice the noise of the same range batched cold) and
through the horse race's intervals.
"""

import numpy as np
import pandas as pd
import pytest
from dagster import AssetCheckSeverity, AssetKey, DagsterInstance

from vae_pipeline.core import batched
from vae_pipeline.core.calendar import shift_trading_days, trading_days
from vae_pipeline.core.covariance import REGISTRY
from vae_pipeline.core.refit.models import chained, model_config
from vae_pipeline.core.training import TrainConfig
from vae_pipeline.pipeline.definitions import build_definitions
from vae_pipeline.pipeline.runner import (
    DECISION_ASSETS,
    backfill,
    execute_run,
    history_start,
    plan_backfill,
    refused_checks,
)
from vae_pipeline.store.base import Span
from vae_pipeline.store.duckdb_store import DuckDBStore
from vae_pipeline_tests.conftest import tiny_settings

BATCH_RTOL = 1e-4
CHAINED_MEDIAN_RTOL = 0.15
EPOCHS = 300  # the default: a chained fixed-epoch fit is compared with the cold fit it replaces
LAST = "2024-06-03"
REST = ["latent_factors", "factor_interpretation", "stock_embedding", "minvar_scorecard",
        "anomaly_report", "horse_race"]  # fmt: skip


def _one_day_runs(settings, days):
    """What ``vae run`` does day by day: the history (one ranged run, as materialise_day),
    then each decision day and each day as one-day runs."""
    defs, instance = build_definitions(settings), DagsterInstance.ephemeral()
    keys = lambda names: [AssetKey(n) for n in names]  # noqa: E731
    first = f"{history_start(days[0], settings):%Y-%m-%d}"
    execute_run(defs, keys(["raw_returns", "market_observables"]),
                partition_range=(first, f"{days[-1]:%Y-%m-%d}"), instance=instance)  # fmt: skip
    decisions = trading_days(shift_trading_days(days[0], -settings.evaluation.horizon), days[-1])
    for day in decisions:
        execute_run(defs, keys(["ground_truth", *DECISION_ASSETS]),
                    partition_key=f"{day:%Y-%m-%d}", instance=instance)  # fmt: skip
    for day in days:
        execute_run(defs, keys(REST), partition_key=f"{day:%Y-%m-%d}", instance=instance)


def _scorecards(settings, days) -> pd.DataFrame:
    store = DuckDBStore(settings.storage.db_path, read_only=True)
    card = store.read("minvar_scorecard", Span.days(days[0], days[-1]))
    return card.set_index(["date", "estimator"])["realised_vol"].sort_index()


def _trains_nothing(name: str) -> bool:
    return name not in REGISTRY or REGISTRY[name].model_key is None


def _reads_a_chained_model(name: str) -> bool:
    key = None if _trains_nothing(name) else REGISTRY[name].model_key
    return key is not None and chained(model_config(TrainConfig(), key))


def _compare(tmp_path, n_days, monkeypatch):
    days = list(trading_days(shift_trading_days(LAST, -(n_days - 1)), LAST))
    ranged = tiny_settings(tmp_path / "ranged.duckdb", horizon=2, epochs=EPOCHS)
    single = tiny_settings(tmp_path / "single.duckdb", horizon=2, epochs=EPOCHS)
    instance = DagsterInstance.ephemeral()
    # the reference models chain once the range outgrows a batch: a batch of 2 windows here (tiny
    # panels fit 64), so the decision windows form chains of up to 16 days
    monkeypatch.setattr(batched, "MAX_BATCH", 2)
    result = backfill(build_definitions(ranged), days[0], days[-1], ranged, instance=instance)
    assert result.filled == days and not result.refused and not result.incomplete
    # every Adam model trains as a warm-start chain: the last day's model was seeded by the day
    # before it, in this run
    for asset in ("trained_vae_mlp", "trained_vae_reference", "trained_cvae_hetero"):
        event = instance.get_latest_materialization_event(AssetKey(asset))
        seeded = event.asset_materialization.metadata["warm_started_from"].value
        assert seeded == f"{days[-2]:%Y-%m-%d} (this run's chain)", (asset, seeded)
    # one run per stage: the whole range in three runs
    assert [stage for stage, *_ in result.plan.runs] == ["history", "decisions", "days"]
    _one_day_runs(single, days)
    a, b = _scorecards(ranged, days), _scorecards(single, days)
    assert a.index.equals(b.index) and len(a) >= n_days * 8
    names = a.index.get_level_values("estimator")
    plain = np.array([_trains_nothing(e) for e in names])
    np.testing.assert_allclose(a[plain], b[plain], rtol=1e-9)
    chain = np.array([_reads_a_chained_model(e) for e in names])
    em = ~plain & ~chain  # the EM headline models: the one-day fits, window by window
    assert em.sum() >= n_days * 2 and chain.sum() >= n_days * 5
    np.testing.assert_allclose(a[em], b[em], rtol=BATCH_RTOL)
    # the chained days against the one-day (cold) fits, per model, beside the noise of the cold
    # fit itself: the same range batched cold (chain_length 0), whose only difference from the
    # one-day runs is float rounding grown by the optimiser
    cold = tiny_settings(tmp_path / "cold.duckdb", horizon=2, epochs=EPOCHS, chain_length=0)
    backfill(build_definitions(cold), days[0], days[-1], cold, instance=DagsterInstance.ephemeral())
    c = _scorecards(cold, days)
    for model in sorted({REGISTRY[e].model_key for e in names[chain]}):
        reads = chain & np.array([REGISTRY[e].model_key == model if chain[i] else False
                                  for i, e in enumerate(names)])  # fmt: skip
        noise = (c[reads] / b[reads] - 1).abs().median()
        chained_diff = (a[reads] / b[reads] - 1).abs().median()
        assert chained_diff <= max(CHAINED_MEDIAN_RTOL, 2 * noise), (model, chained_diff, noise)
        print(f"{model.label}: median |relative difference| to the one-day runs: chained "
              f"{chained_diff:.3f}, cold batched {noise:.3f}")  # fmt: skip
    # the horse race over the same days: each estimator's gap to Ledoit-Wolf inside the
    # interval of the one-day runs'
    race = {
        name: DuckDBStore(s.storage.db_path, read_only=True)
        .read("horse_race")
        .set_index("estimator")
        for name, s in (("ranged", ranged), ("single", single))
    }
    assert set(race["ranged"].index) == set(race["single"].index)
    assert (race["ranged"]["n_scored"] == n_days).all()
    one = race["single"].loc[race["ranged"].index]
    gap = race["ranged"]["diff_vs_ledoit_wolf"]
    inside = gap.between(one["diff_vs_ledoit_wolf_lo"], one["diff_vs_ledoit_wolf_hi"])
    inside |= np.isclose(gap, one["diff_vs_ledoit_wolf"]) | gap.isna()  # Ledoit-Wolf itself
    assert inside.all(), gap[~inside]


# slow (~40-75 s on 2 cores): run by .ci/run, outside the 10-minute `make test`
@pytest.mark.slow
def test_a_ranged_backfill_scores_each_day_as_one_day_runs_do(tmp_path, monkeypatch):
    _compare(tmp_path, 5, monkeypatch)


@pytest.mark.slow
def test_a_21_day_ranged_backfill_scores_each_day_as_one_day_runs_do(tmp_path, monkeypatch):
    _compare(tmp_path, 21, monkeypatch)


def test_a_gate_refusing_one_day_of_a_range_stores_nothing_for_it_and_names_it(tmp_path):
    settings = tiny_settings(tmp_path / "gate.duckdb", horizon=2)
    defs, instance = build_definitions(settings), DagsterInstance.ephemeral()
    days = ["2024-05-29", "2024-05-30", "2024-05-31"]
    execute_run(defs, [AssetKey("raw_returns"), AssetKey("market_observables")],
                partition_range=(settings.data.start, days[-1]), instance=instance)  # fmt: skip
    store = DuckDBStore(settings.storage.db_path)
    # the last day's observables go missing: its CVAEs (conditioned on them) and its
    # covariances are refused; the other days' windows do not reach it
    store.replace("market_observables", pd.DataFrame(), Span.days(days[-1], days[-1]))
    result = execute_run(
        defs, [AssetKey(n) for n in ["ground_truth", *DECISION_ASSETS]],
        partition_range=(days[0], days[-1]), instance=instance,
    )  # fmt: skip
    assert result.success  # the days that passed went on downstream
    checks = {(c.asset_key.to_user_string(), c.check_name): c
              for c in result.get_asset_check_evaluations()}  # fmt: skip
    refused = checks[("trained_cvae", "history_complete")]
    assert not refused.passed and refused.severity == AssetCheckSeverity.WARN
    assert refused.metadata["failed_days"].value == days[-1]
    assert f"{days[-1]}: market_observables holds no rows" in refused.metadata["problems"].value
    assert checks[("trained_vae", "loss_finite_decreasing")].passed
    # what `vae backfill` prints for it (and exits 1 on)
    lines = refused_checks(result)
    assert any(
        line.startswith(f"trained_cvae check history_complete failed: {days[-1]}: ")
        for line in lines
    ), lines
    assert not any(line.startswith("trained_vae check") for line in lines)
    stored = lambda table: sorted(  # noqa: E731
        f"{d:%Y-%m-%d}" for d in pd.to_datetime(store.read(table)["date"]).unique()
    )
    assert stored("trained_vae") == days  # trains nothing conditioned: every day stored
    assert stored("trained_cvae") == days[:-1]
    assert stored("covariance_estimates") == days[:-1]  # skipped: its CVAE was refused


def test_the_plan_skips_stored_days_and_runs_only_the_missing_stretches(tmp_path):
    settings = tiny_settings(tmp_path / "plan.duckdb", horizon=2)
    defs = build_definitions(settings)
    empty = plan_backfill(defs, "2024-05-28", "2024-06-04", settings)
    assert [s for s, *_ in empty.runs] == ["history", "decisions", "days"]
    assert empty.runs[1][1:3] == ("2024-05-23", "2024-06-04")  # from A - H
    assert empty.runs[0][1] == f"{history_start(pd.Timestamp('2024-05-28'), settings):%Y-%m-%d}"
    store = DuckDBStore(settings.storage.db_path)
    # pretend every daily table holds 2024-05-30 and 2024-05-31: the range splits around them
    for table in empty.stage_assets["history"] + empty.stage_assets["decisions"] + \
            empty.stage_assets["days"]:  # fmt: skip
        store.replace(table, pd.DataFrame({"date": pd.to_datetime(["2024-05-30", "2024-05-31"])}))
    plan = plan_backfill(defs, "2024-05-28", "2024-06-04", settings)
    assert [f"{d:%Y-%m-%d}" for d in plan.complete] == ["2024-05-30", "2024-05-31"]
    days = [(first, last) for stage, first, last, _ in plan.runs if stage == "days"]
    assert days == [("2024-05-28", "2024-05-29"), ("2024-06-03", "2024-06-04")]
    forced = plan_backfill(defs, "2024-05-28", "2024-06-04", settings, force=True)
    assert [(f, la) for s, f, la, _ in forced.runs if s == "days"] == [("2024-05-28", "2024-06-04")]
