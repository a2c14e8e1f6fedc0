"""The asset graph end to end: one partition, idempotence, gates, holidays, short windows."""

import duckdb
import numpy as np
import pandas as pd
from dagster import AssetKey, DagsterInstance

from vae_pipeline.pipeline.definitions import build_definitions
from vae_pipeline.pipeline.resources import DataSourceResource
from vae_pipeline_tests.conftest import DAY, DECISION, daily_keys, tiny_settings

PARTITIONED = [
    "raw_returns",
    "market_observables",
    "ground_truth",
    "standardised_panel",
    "trained_vae",
    "trained_vae_mlp",
    "trained_vae_reference",
    "trained_cvae",
    "trained_cvae_reference",
    "trained_vae_hetero",
    "trained_cvae_hetero",
    "latent_factors",
    "factor_interpretation",
    "covariance_estimates",
    "minvar_scorecard",
    "anomaly_report",
    "stock_embedding",
]


def table_counts(db_path) -> dict[str, int]:
    with duckdb.connect(str(db_path), read_only=True) as con:
        tables = [
            t[0] for t in con.execute("select table_name from information_schema.tables").fetchall()
        ]
        return {t: con.execute(f'select count(*) from main."{t}"').fetchall()[0][0] for t in tables}


def rows_for(db_path, table, day) -> pd.DataFrame:
    with duckdb.connect(str(db_path), read_only=True) as con:
        return con.execute(
            f'select * from main."{table}" where date = ?', [pd.Timestamp(day).to_pydatetime()]
        ).df()


def test_whole_graph_for_one_partition(materialised):
    settings, defs, _, results = materialised
    assert all(r.success for r in results)
    for table in PARTITIONED:
        assert len(rows_for(settings.storage.db_path, table, DAY)) > 0, table
    card = rows_for(settings.storage.db_path, "minvar_scorecard", DAY)
    assert set(card["estimator"]) >= {
        "sample",
        "ledoit_wolf",
        "nonlinear_shrinkage",
        "pca",
        "factor_analysis",
        "vae",
        "cvae",
        "oracle",
    }
    assert (card["decision_date"] == pd.Timestamp(DECISION)).all()
    assert np.isfinite(card["realised_vol"]).all() and (card["realised_vol"] > 0).all()
    assert table_counts(settings.storage.db_path)["horse_race"] == card["estimator"].nunique()
    checks = [e for r in results for e in r.get_asset_check_evaluations()]
    assert len({c.check_name for c in checks}) >= 10
    blocking = [c for c in checks if c.check_name != "vae_beats_ledoit_wolf"]
    assert all(c.passed for c in blocking), [c.check_name for c in blocking if not c.passed]


def test_model_weights_round_trip_from_duckdb(materialised):
    from vae_pipeline.store import DuckDBStore, ModelStore

    settings, *_ = materialised
    stored = rows_for(settings.storage.db_path, "trained_vae", DAY)
    models = ModelStore(DuckDBStore(settings.storage.db_path, read_only=True))
    model = models.load_model(DAY, "trained_vae")  # the headline: it chooses its own k
    window = rows_for(settings.storage.db_path, "latent_factors", DAY)
    assert 1 <= model.config.latent_dim == window["latent"].nunique()
    assert stored["final_loss"].iloc[0] < stored["first_loss"].iloc[0]
    reference = models.load_model(DAY, "trained_vae_reference")  # the seed's set-up: k, epochs
    assert reference.config.latent_dim == settings.model.latent_dim
    assert len(reference.history) == settings.model.epochs


def test_rematerialising_a_partition_replaces_it_exactly(materialised):
    settings, defs, instance, _ = materialised
    before = table_counts(settings.storage.db_path)
    weights_before = rows_for(settings.storage.db_path, "trained_vae", DAY)["weights"].iloc[0]
    cov_before = rows_for(settings.storage.db_path, "covariance_estimates", DAY)
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        partition_key=DAY,
        instance=instance,
        asset_selection=daily_keys(defs),
    )
    assert result.success
    assert table_counts(settings.storage.db_path) == before
    assert (
        rows_for(settings.storage.db_path, "trained_vae", DAY)["weights"].iloc[0] == weights_before
    )
    pd.testing.assert_frame_equal(
        rows_for(settings.storage.db_path, "covariance_estimates", DAY), cov_before
    )


class _CorruptDay:
    """A synthetic source whose returns on one day hold a NaN."""

    def __init__(self, inner, bad_day):
        self._inner, self._bad = inner, pd.Timestamp(bad_day)

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def returns(self, start, end):
        long = self._inner.returns(start, end)
        long.loc[
            (long["date"] == self._bad) & (long["ticker"] == long["ticker"].iloc[0]), "ret"
        ] = np.nan
        return long


class CorruptSourceResource(DataSourceResource):
    bad_day: str = DAY

    def get(self):
        return _CorruptDay(super().get(), self.bad_day)


def test_failing_blocking_check_stores_nothing_and_stops_downstream(tmp_path):
    settings = tiny_settings(tmp_path / "bad.duckdb")
    source = CorruptSourceResource(
        **DataSourceResource.from_settings(settings).__dict__, bad_day=DAY
    )
    defs = build_definitions(settings, source=source)
    instance = DagsterInstance.ephemeral()
    # History up to the day before the bad one is clean and stored.
    job = defs.resolve_implicit_global_asset_job_def()
    job.execute_in_process(
        instance=instance,
        asset_selection=[AssetKey("raw_returns")],
        tags={
            "dagster/asset_partition_range_start": "2024-05-28",
            "dagster/asset_partition_range_end": "2024-05-31",
        },
    )
    before = table_counts(settings.storage.db_path)
    result = job.execute_in_process(
        partition_key=DAY,
        instance=instance,
        raise_on_error=False,
        asset_selection=daily_keys(defs),
    )
    assert not result.success
    failed = [c for c in result.get_asset_check_evaluations() if not c.passed]
    assert [c.check_name for c in failed] == ["finite_bounded"]
    assert "non-finite" in str(failed[0].metadata["problems"].value)
    after = table_counts(settings.storage.db_path)
    assert after.get("raw_returns") == before["raw_returns"]  # no bad rows, earlier rows intact
    # nothing downstream materialised (the synthetic truth does not read returns)
    assert set(after) <= {"raw_returns", "market_observables", "ground_truth"}


def test_short_window_near_start_is_refused(tmp_path):
    settings = tiny_settings(tmp_path / "short.duckdb")
    defs = build_definitions(settings)
    instance = DagsterInstance.ephemeral()
    job = defs.resolve_implicit_global_asset_job_def()
    job.execute_in_process(
        instance=instance,
        asset_selection=[AssetKey("raw_returns"), AssetKey("market_observables")],
        tags={
            "dagster/asset_partition_range_start": "2024-01-02",
            "dagster/asset_partition_range_end": "2024-02-15",
        },
    )
    result = job.execute_in_process(
        partition_key="2024-02-15",
        instance=instance,
        raise_on_error=False,
        asset_selection=[
            AssetKey(n) for n in ("standardised_panel", "trained_vae", "latent_factors")
        ],
    )
    assert not result.success
    failed = {c.check_name: c for c in result.get_asset_check_evaluations() if not c.passed}
    assert "window_complete" in failed
    assert "holds 32 of 60 trading days" in str(
        failed["window_complete"].metadata["problems"].value
    )
    assert "standardised_panel" not in table_counts(settings.storage.db_path)


def test_holiday_partition_stores_nothing_and_skips_the_models(tmp_path):
    settings = tiny_settings(tmp_path / "holiday.duckdb")
    defs = build_definitions(settings)
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process(
        partition_key="2024-05-27",
        instance=DagsterInstance.ephemeral(),  # Memorial Day
        asset_selection=[AssetKey(n) for n in ("raw_returns", "standardised_panel", "trained_vae")],
    )
    assert result.success
    assert "standardised_panel" not in table_counts(settings.storage.db_path)
    assert not result.asset_materializations_for_node("trained_vae")


def test_definitions_hold_the_graph_and_blocking_checks():
    from vae_pipeline.pipeline.definitions import defs

    graph = defs.resolve_asset_graph()
    names = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert names == set(PARTITIONED) | {"horse_race", "report", "beta_sweep"}
    specs = [s for a in graph.assets_defs for s in a.check_specs]
    assert len(specs) >= 10
    blocking = {s.name for s in specs if s.blocking}
    assert {
        "finite_bounded",
        "unique_date_ticker",
        "window_complete",
        "covariance_symmetric_psd",
        "weights_sum_to_one",
        "every_estimator_scored",
        "loss_finite_decreasing",
    } <= blocking
    assert "vae_beats_ledoit_wolf" not in blocking
    for assets_def in graph.assets_defs:
        for key in assets_def.keys:
            assert assets_def.descriptions_by_key.get(key), f"{key} has no description"


def test_the_loss_gate_reads_the_epoch_whose_weights_were_kept():
    from types import SimpleNamespace

    import pandas as pd
    import torch

    from vae_pipeline.pipeline.assets.models import _problems

    history = pd.DataFrame({"total": [10.0, 5.0, 12.0], "kl": [1.0, 1.0, 1.0]})
    model = torch.nn.Linear(2, 2)
    kept_best = SimpleNamespace(history=history, best_epoch=1, model=model)
    kept_last = SimpleNamespace(history=history, best_epoch=None, model=model)
    assert _problems(kept_best, seeded=False)["loss_finite_decreasing"] == []
    assert _problems(kept_last, seeded=False)["loss_finite_decreasing"] == ["loss went 10 -> 12"]
