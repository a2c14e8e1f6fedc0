"""The one store: both backends keep the same contract (spans, atomic replace, schemas, models)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from vae_pipeline.store import DuckDBStore, ModelStore, ParquetStore, Span, StoreError
from vae_pipeline.store.connection import DatabaseFileError
from vae_pipeline.store.schemas import SCHEMAS

DAYS = pd.to_datetime(["2024-06-03", "2024-06-04", "2024-06-05"])


def _returns(days, scale: float = 1.0) -> pd.DataFrame:
    rng = np.random.default_rng(42)
    rows = [(d, t, scale * rng.normal()) for d in days for t in ("B", "A")]
    # columns deliberately out of the declared order: the store fixes it
    return pd.DataFrame(rows, columns=["date", "ticker", "ret"])[["ret", "ticker", "date"]]


@pytest.fixture(params=["duckdb", "parquet"])
def store(request, tmp_path):
    if request.param == "duckdb":
        return DuckDBStore(tmp_path / "s.duckdb", cache_mb=0)
    return ParquetStore(str(tmp_path / "lake"))


def test_a_span_replaces_only_its_days_and_reads_back_in_declared_order(store):
    store.replace("raw_returns", _returns(DAYS), Span.days(DAYS[0], DAYS[-1]))
    store.replace("raw_returns", _returns(DAYS[1:2], scale=10.0), Span.days(DAYS[1], DAYS[1]))
    back = store.read("raw_returns")
    assert list(back.columns) == SCHEMAS["raw_returns"].names
    assert str(back["date"].dtype) == "datetime64[ns]" and len(back) == 6
    middle = store.read("raw_returns", Span.days(DAYS[1], DAYS[1]))
    assert len(middle) == 2 and (middle["ret"].abs() > 0).all()
    assert middle["ret"].tolist() == pytest.approx(_returns(DAYS[1:2], 10.0)["ret"].tolist())
    assert store.tables() == {"raw_returns"} and store.exists()


def test_rewriting_a_partition_is_idempotent(store):
    span = Span.days(DAYS[0], DAYS[0])
    store.replace("raw_returns", _returns(DAYS[:1]), span)
    first = store.read("raw_returns")
    store.replace("raw_returns", _returns(DAYS[:1]), span)
    pd.testing.assert_frame_equal(store.read("raw_returns"), first)


def test_an_empty_frame_empties_the_span_and_an_unknown_table_reads_empty(store):
    store.replace("raw_returns", _returns(DAYS), Span.days(DAYS[0], DAYS[-1]))
    store.replace("raw_returns", _returns([]), Span.days(DAYS[2], DAYS[2]))
    assert sorted(store.read("raw_returns")["date"].unique()) == list(DAYS[:2])
    assert store.read("latent_factors").empty


def test_a_column_outside_the_schema_is_refused(store):
    with pytest.raises(ValueError, match="not in its declared schema"):
        store.replace("raw_returns", _returns(DAYS).assign(extra=1.0), None)


def test_both_backends_hand_out_the_same_frame(tmp_path):
    frames = []
    for s in (DuckDBStore(tmp_path / "a.duckdb"), ParquetStore(str(tmp_path / "lake"))):
        s.replace("raw_returns", _returns(DAYS), Span.days(DAYS[0], DAYS[-1]))
        frames.append(s.read("raw_returns").sort_values(["date", "ticker"], ignore_index=True))
    pd.testing.assert_frame_equal(*frames)


def test_a_failed_duckdb_write_leaves_the_old_rows(tmp_path):
    s = DuckDBStore(tmp_path / "s.duckdb")
    s.replace("raw_returns", _returns(DAYS), None)
    bad = _returns(DAYS).astype({"ret": object})
    bad.loc[3, "ret"] = "not a number"  # the insert fails after the delete ran
    with pytest.raises(duckdb.Error):
        s.replace("raw_returns", bad, None)
    assert len(s.read("raw_returns")) == 6  # rolled back: all the old rows


def test_a_missing_or_foreign_file_gives_one_clear_error(tmp_path):
    missing = DuckDBStore(tmp_path / "none.duckdb", read_only=True)
    with pytest.raises(StoreError, match="no data yet at .*none.duckdb: run `make run` first"):
        missing.must_exist()
    foreign = tmp_path / "foreign.duckdb"
    foreign.write_bytes(b"SQLite format 3\x00" + bytes(4096))
    with pytest.raises(DatabaseFileError, match="not a usable vae_pipeline DuckDB database"):
        DuckDBStore(foreign, read_only=True, lock_wait=0.1).read("raw_returns")


def _model(seed: int = 42):
    from vae_pipeline.core.training import TrainConfig, train_vae

    rng = np.random.default_rng(seed)
    window = pd.DataFrame(rng.normal(0, 0.01, (40, 6)), columns=list("ABCDEF"))
    return train_vae(window, TrainConfig(latent_dim=2, epochs=5, hidden=8, seed=seed)), window


def test_models_round_trip_on_both_backends_and_stay_readable_as_a_table(store):
    import torch

    result, window = _model()
    models = ModelStore(store)
    models.save_model("2024-06-03", "trained_vae", result)
    models.save_model("2024-06-03", "trained_vae", result)  # re-materialised: replaced
    back = models.load_model("2024-06-03", "trained_vae")
    for (k, a), (_, b) in zip(result.model.state_dict().items(),
                              back.model.state_dict().items(), strict=True):  # fmt: skip
        assert torch.equal(a, b), k
    np.testing.assert_allclose(back.encode_mean(window), result.encode_mean(window))
    row = store.read("trained_vae")
    assert len(row) == 1 and row["model"].iloc[0] == "vae" and row["epochs_run"].iloc[0] == 5
    assert models.latest("trained_vae")[0] == pd.Timestamp("2024-06-03")
    with pytest.raises(LookupError, match="no trained_vae stored for 2024-06-04"):
        models.load_model("2024-06-04", "trained_vae")
    if isinstance(store, ParquetStore):  # the replaced weights file is gone, the row's is there
        files = sorted(Path(store.base).glob("trained_vae/weights/*.pt"))
        assert [f.relative_to(store.base).as_posix() for f in files] == list(row["weights_ref"])
