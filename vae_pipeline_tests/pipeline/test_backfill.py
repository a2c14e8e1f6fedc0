"""Ranged single runs (a backfill) against one-day runs, and a gate refusing one day of a range.

The ranged run trains a range's windows together (``core.refit.fit_model_range``: batched
training), so its models may differ from the one-day fits within the optimiser's noise. The
tolerance: the estimators that train nothing (sample, Ledoit-Wolf, ..., the oracle) give the
same realised vol to 1e-9; the models that start from the same seeded weights and run the same
steps in a batch (the reference VAE / CVAE, their learned-noise siblings, the EM headline)
within BATCH_RTOL, float rounding; ``vae_mlp`` trains as warm-start chains in a ranged run
(each day after a chain's first from the day before, not cold), and a cold fit of it stops
wherever its convergence rule fires, so its days are compared in distribution (median within
MLP_MEDIAN_RTOL) and through the horse race's intervals.
"""

import numpy as np
import pandas as pd
import pytest
from dagster import AssetCheckSeverity, AssetKey, DagsterInstance

from vae_pipeline.core.calendar import shift_trading_days, trading_days
from vae_pipeline.core.covariance import REGISTRY
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
MLP_MEDIAN_RTOL = 0.15
EPOCHS = 12  # few epochs: the comparison, not the fit, is under test
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


def _compare(tmp_path, n_days):
    days = list(trading_days(shift_trading_days(LAST, -(n_days - 1)), LAST))
    ranged = tiny_settings(tmp_path / "ranged.duckdb", horizon=2, epochs=EPOCHS)
    single = tiny_settings(tmp_path / "single.duckdb", horizon=2, epochs=EPOCHS)
    instance = DagsterInstance.ephemeral()
    result = backfill(build_definitions(ranged), days[0], days[-1], ranged, instance=instance)
    assert result.filled == days and not result.refused and not result.incomplete
    # vae_mlp trains as one warm-start chain over the range (chain_length 16): the last day's
    # model was seeded by the day before it, in this run
    event = instance.get_latest_materialization_event(AssetKey("trained_vae_mlp"))
    seeded = event.asset_materialization.metadata["warm_started_from"].value
    assert seeded == f"{days[-2]:%Y-%m-%d} (this run's chain)", seeded
    # one run per stage: the whole range in three runs
    assert [stage for stage, *_ in result.plan.runs] == ["history", "decisions", "days"]
    _one_day_runs(single, days)
    a, b = _scorecards(ranged, days), _scorecards(single, days)
    assert a.index.equals(b.index) and len(a) >= n_days * 8
    plain = [_trains_nothing(e) for e in a.index.get_level_values("estimator")]
    np.testing.assert_allclose(a[plain], b[plain], rtol=1e-9)
    mlp = a.index.get_level_values("estimator") == "vae_mlp"
    batched = ~np.array(plain) & ~mlp
    assert batched.sum() >= n_days * 4 and mlp.sum() == n_days
    np.testing.assert_allclose(a[batched], b[batched], rtol=BATCH_RTOL)
    # vae_mlp: the chained days against the one-day (cold) fits, beside the noise of the cold
    # fit itself: the same range batched cold (chain_length 0), whose only difference from the
    # one-day runs is float rounding grown by the optimiser
    cold = tiny_settings(tmp_path / "cold.duckdb", horizon=2, epochs=EPOCHS, chain_length=0)
    backfill(build_definitions(cold), days[0], days[-1], cold, instance=DagsterInstance.ephemeral())
    c = _scorecards(cold, days)
    noise = (c[mlp] / b[mlp] - 1).abs().median()
    chained = (a[mlp] / b[mlp] - 1).abs().median()
    assert chained <= max(MLP_MEDIAN_RTOL, 2 * noise), (chained, noise)
    print(f"vae_mlp median |relative difference| to the one-day runs: chained {chained:.3f}, "
          f"cold batched {noise:.3f}")
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
def test_a_ranged_backfill_scores_each_day_as_one_day_runs_do(tmp_path):
    _compare(tmp_path, 5)


@pytest.mark.slow
def test_a_21_day_ranged_backfill_scores_each_day_as_one_day_runs_do(tmp_path):
    _compare(tmp_path, 21)


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
