"""Tests for vae_pipeline.core.standardise."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from vae_pipeline.core.standardise import Standardiser


@pytest.fixture
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(42)
    values = rng.normal(0.001, 0.02, size=(200, 5)) * np.arange(1, 6)
    index = pd.bdate_range("2020-01-01", periods=200, name="date")
    return pd.DataFrame(values, index=index, columns=[f"S{i:03d}" for i in range(5)])


def test_transform_is_standardised_float32(frame):
    z = Standardiser().fit(frame).transform(frame)
    assert z.dtype == np.float32
    assert z.shape == frame.shape
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1.0, atol=1e-5)


def test_parameters_come_from_training_window_only(frame):
    train, test = frame.iloc[:100], frame.iloc[100:]
    st = Standardiser().fit(train)
    np.testing.assert_allclose(st.mean_, train.mean().to_numpy())
    # Test rows are scaled with the training parameters, not their own.
    expected = (test.to_numpy() - train.mean().to_numpy()) / train.std(ddof=0).to_numpy()
    np.testing.assert_allclose(st.transform(test), expected, rtol=1e-5, atol=1e-5)


def test_inverse_round_trip(frame):
    st = Standardiser().fit(frame)
    back = st.inverse_transform(st.transform(frame))
    np.testing.assert_allclose(back, frame.to_numpy(), rtol=1e-5, atol=1e-7)


def test_accepts_ndarray(frame):
    st = Standardiser().fit(frame.to_numpy())
    assert st.columns_ is None
    np.testing.assert_allclose(
        st.transform(frame.to_numpy()), Standardiser().fit(frame).transform(frame)
    )


def test_constant_column_named_in_error(frame):
    bad = frame.copy()
    bad["S003"] = 0.01
    with pytest.raises(ValueError, match="S003"):
        Standardiser().fit(bad)


def test_non_finite_rejected(frame):
    bad = frame.copy()
    bad.iloc[5, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Standardiser().fit(bad)
    st = Standardiser().fit(frame)
    bad.iloc[5, 2] = np.inf
    with pytest.raises(ValueError):
        st.transform(bad)


def test_wrong_width_and_unfitted(frame):
    with pytest.raises(RuntimeError):
        Standardiser().transform(frame)
    st = Standardiser().fit(frame)
    with pytest.raises(ValueError, match="columns"):
        st.transform(frame.iloc[:, :3])
    with pytest.raises(ValueError, match="columns differ"):
        st.transform(frame[frame.columns[::-1]])


def test_dict_round_trip_through_json(frame):
    st = Standardiser().fit(frame)
    state = json.loads(json.dumps(st.to_dict()))
    back = Standardiser.from_dict(state)
    assert back.columns_ == list(frame.columns)
    np.testing.assert_array_equal(back.transform(frame), st.transform(frame))
