"""The per-process frame cache: served only while exact, never stale after any write."""

import warnings

import duckdb
import pandas as pd
from dagster import AssetKey, DagsterInstance

from vae_pipeline.pipeline.window_store import WindowStore
from vae_pipeline.store.duckdb_store import transaction
from vae_pipeline.store.frame_cache import FRAMES, FrameCache, file_signature
from vae_pipeline_tests.conftest import tiny_settings

MB = 2**20


def _db(tmp_path, rows: int = 3) -> str:
    path = str(tmp_path / "c.duckdb")
    frame = pd.DataFrame({"date": pd.Timestamp("2024-06-03"), "x": range(rows)})  # noqa: F841
    with duckdb.connect(path) as con:
        con.execute("create table t as select * from frame")
        con.execute("create table u as select * from frame")
    return path


def test_a_hit_is_a_copy_and_a_foreign_write_drops_everything(tmp_path):
    path, cache = _db(tmp_path), FrameCache()
    frame = pd.DataFrame({"x": [1.0, 2.0]})
    cache.put(path, "k", "t", frame, file_signature(path), MB)
    hit = cache.get(path, "k")
    hit.loc[0, "x"] = 99.0  # a reader may modify what it gets
    assert cache.get(path, "k")["x"].tolist() == [1.0, 2.0]
    with duckdb.connect(path) as con:  # another writer (another process, or outside the IO manager)
        con.execute("insert into u values ('2024-06-04', 7)")
    assert cache.get(path, "k") is None and len(cache) == 0


def test_own_writes_drop_their_table_and_restamp_the_rest(tmp_path):
    path, cache = _db(tmp_path), FrameCache()
    before = file_signature(path)
    cache.put(path, "t-slice", "t", pd.DataFrame({"x": [1]}), before, MB)
    cache.put(path, "u-slice", "u", pd.DataFrame({"x": [2]}), before, MB)
    with transaction(path, {}, write=True) as session:
        session.conn.execute("insert into t values ('2024-06-04', 7)")
    assert session.before == before and session.after == file_signature(path) != before
    cache.wrote(path, "t", session.before, session.after)
    assert cache.get(path, "t-slice") is None
    assert cache.get(path, "u-slice")["x"].tolist() == [2]  # still exact: served


def test_the_cache_is_bounded(tmp_path):
    path, cache = _db(tmp_path), FrameCache()
    big = pd.DataFrame({"x": range(100_000)}, dtype="float64")  # 0.8 MB
    for i in range(5):
        cache.put(path, i, "t", big, file_signature(path), 2 * MB)
    assert len(cache) == 2 and cache.get(path, 4) is not None and cache.get(path, 0) is None


def test_rematerialising_a_day_is_seen_by_the_next_read(tmp_path):
    """The windows read through the store come from the cache until the day is re-stored by the
    IO manager (this process) or by anyone else; then they are read again."""
    from vae_pipeline.pipeline.definitions import build_definitions
    from vae_pipeline.pipeline.resources import DataSourceResource
    from vae_pipeline.pipeline.runner import HISTORY_ASSETS, RANGE_END_TAG, RANGE_START_TAG

    settings = tiny_settings(tmp_path / "p.duckdb")
    store = WindowStore(database=str(settings.storage.db_path))
    job = build_definitions(settings).resolve_implicit_global_asset_job_def()
    instance = DagsterInstance.ephemeral()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tags = {RANGE_START_TAG: settings.data.start, RANGE_END_TAG: "2024-06-03"}
        keys = [AssetKey(n) for n in HISTORY_ASSETS]
        assert job.execute_in_process(instance=instance, asset_selection=keys, tags=tags).success
    first = store.returns("2024-06-03", settings.evaluation.window)
    hits = FRAMES.hits
    assert (
        store.returns("2024-06-03", settings.evaluation.window).equals(first)
        and FRAMES.hits == hits + 1
    )

    class Doubled(DataSourceResource):  # the same panel, every return doubled
        def get(self):
            source = super().get()
            returns = source.returns
            source.returns = lambda start, end: returns(start, end).assign(
                ret=lambda f: 2 * f["ret"]
            )
            return source

    doubled = Doubled.from_settings(settings).model_dump()
    defs = build_definitions(settings, source=Doubled(**doubled))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert (
            defs.resolve_implicit_global_asset_job_def()
            .execute_in_process(
                instance=instance,
                asset_selection=[AssetKey("raw_returns")],
                partition_key="2024-06-03",
            )
            .success
        )
    after = store.returns("2024-06-03", settings.evaluation.window)
    pd.testing.assert_series_equal(after.iloc[-1], 2 * first.iloc[-1])
    pd.testing.assert_frame_equal(after.iloc[:-1], first.iloc[:-1])

    with duckdb.connect(str(settings.storage.db_path)) as con:  # a write from outside the pipeline
        con.execute("update raw_returns set ret = 0 where date = '2024-05-31'")
    assert (store.returns("2024-06-03", settings.evaluation.window).loc["2024-05-31"] == 0).all()
