"""Cleaning rules of real data (core.cleaning), each on a tiny hand-made panel."""

import numpy as np
import pandas as pd
import pytest

from vae_pipeline.core.calendar import trading_days
from vae_pipeline.core.cleaning import CleaningConfig, clean_prices, clean_returns
from vae_pipeline.core.panel import to_long, window_panel

DAYS = trading_days("2024-01-02", "2024-06-28")


def prices(columns: dict[str, list[float]]) -> pd.DataFrame:
    n = max(len(v) for v in columns.values())
    data = {k: list(v) + [np.nan] * (n - len(v)) for k, v in columns.items()}
    return pd.DataFrame(data, index=DAYS[:n])


def walk(n: int, seed: int = 0, start: float = 100.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return start * np.cumprod(1 + rng.normal(0.0005, 0.01, n))


def test_prices_become_simple_returns():
    out = clean_prices(prices({"A": [100, 110, 99, 99.99]}))
    np.testing.assert_allclose(out.returns["A"].to_numpy(), [np.nan, 0.1, -0.1, 0.01], atol=1e-12)
    assert out.events.empty


def test_split_error_pair_is_neutralised_and_counted():
    # -60 % then +150 %: a split booked a day early. A real -50 % crash without reversal stays.
    p = prices({"A": [100, 100, 40, 100, 101], "B": [50, 50, 25, 25.5, 25.5]})
    out = clean_prices(p)
    np.testing.assert_allclose(out.returns["A"].iloc[1:], [0.0, 0.0, 0.0, 0.01], atol=1e-12)
    np.testing.assert_allclose(out.returns["B"].iloc[2], -0.5)
    assert out.counts()["split_pair"] == 2
    ev = out.events[out.events["rule"] == "split_pair"]
    assert list(ev["ticker"]) == ["A", "A"] and ev["before"].iloc[0] == pytest.approx(-0.6)


def test_single_absurd_return_is_neutralised():
    out = clean_prices(prices({"A": [10, 10, 100, 100.5]}))  # +900 %, then the new level holds
    np.testing.assert_allclose(out.returns["A"].iloc[1:], [0.0, 0.0, 0.005], atol=1e-12)
    assert out.counts()["absurd"] == 1


def test_stale_prices_are_dropped_from_the_fifth_zero_with_the_catch_up():
    flat = [100.0] * 8 + [103.0, 104.0]  # 7 zero returns, then the catch-up +3 %
    out = clean_prices(prices({"A": flat}), CleaningConfig(stale_days=5))
    r = out.returns["A"]
    assert (
        r.iloc[1:5] == 0
    ).all()  # the first four zeros are a quiet stock, as far as anyone knows
    assert r.iloc[5:9].isna().all()  # zeros 5..7 and the catch-up return are dropped
    assert r.iloc[9] == pytest.approx(104 / 103 - 1)
    assert out.counts()["stale"] == 3 and out.counts()["gap_return_dropped"] == 1


def test_winsorisation_with_configurable_bounds():
    ret = pd.DataFrame({"A": [0.6, -0.6, 0.1]}, index=DAYS[:3])
    out = clean_returns(ret, CleaningConfig(winsor_low=-0.5, winsor_high=0.5))
    assert list(out.returns["A"]) == [0.5, -0.5, 0.1]
    assert out.counts()["winsorised"] == 2
    with pytest.raises(ValueError, match="winsor"):
        CleaningConfig(winsor_low=0.1)


def _staggered(n: int = 60) -> pd.DataFrame:
    p = pd.DataFrame({t: walk(n, seed) for seed, t in enumerate("ABCD")}, index=DAYS[:n])
    p.loc[p.index[:10], "B"] = np.nan  # lists on day 10
    p.loc[p.index[45:], "C"] = np.nan  # delists after day 44
    p.loc[p.index[[30, 31]], "D"] = np.nan  # a two-day hole (a halt)
    return p


def test_staggered_listings_and_holes_with_full_coverage_rule():
    out = clean_prices(_staggered(), CleaningConfig(window=20, min_coverage=1.0))
    r = out.returns
    assert r["B"].iloc[:11].isna().all() and r["B"].iloc[11:].notna().all()  # listing: no return
    assert r["C"].iloc[45:].isna().all()
    assert r["D"].iloc[30:33].isna().all()  # the hole and the return spanning it
    assert out.counts()["filled"] == 0 and out.counts()["gap_return_dropped"] == 1
    long = to_long(r)
    wide, problems = window_panel(long, r.index[40], 20)
    assert problems == [] and list(wide.columns) == ["A", "B", "C"]  # D's hole is in the window
    wide, _ = window_panel(long, r.index[59], 20)
    assert list(wide.columns) == ["A", "B", "D"]  # C delisted


def test_coverage_rule_fills_short_holes_of_listed_names():
    p = _staggered()
    cfg = CleaningConfig(window=20, min_coverage=0.8, max_fill_run=3)  # max_gap = 4 - 1 = 3
    out = clean_prices(p, cfg)
    r = out.returns
    assert list(r["D"].iloc[30:32]) == [0.0, 0.0]
    assert r["D"].iloc[32] == pytest.approx(p["D"].iloc[32] / p["D"].iloc[29] - 1)  # spans it
    assert r["B"].iloc[:11].isna().all()  # never filled before listing
    assert list(r["C"].iloc[45:48]) == [0.0, 0.0, 0.0] and r["C"].iloc[48:].isna().all()
    wide, _ = window_panel(to_long(r), r.index[40], 20)
    assert "D" in wide.columns  # 3 non-genuine days of 20 >= 80 % coverage
    for name in wide.columns:  # the guarantee: every admitted name has the coverage
        genuine = clean_prices(p, CleaningConfig(window=20, min_coverage=1.0)).returns[name]
        assert genuine.loc[wide.index].notna().mean() >= cfg.min_coverage
    assert "coverage" in cfg.describe() and "3 non-genuine" in cfg.describe()


def _messy(n: int = 90, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = pd.DataFrame({f"T{j}": walk(n, seed + j) for j in range(8)}, index=DAYS[:n])
    for j in range(8):
        holes = rng.choice(n, size=4, replace=False)
        p.iloc[holes, j] = np.nan
    p.iloc[20:29, 1] = p.iloc[19, 1]  # stale run
    p.iloc[40, 2] = p.iloc[40, 2] * 0.4  # glitch pair
    p.iloc[59, 3] = p.iloc[59, 3] * 2.5  # glitch pair, the other way
    p.iloc[70:, 4] = p.iloc[70:, 4] * 8  # absurd single move
    p.iloc[:15, 5] = np.nan  # late listing
    return p


@pytest.mark.parametrize("min_coverage", [1.0, 0.9])
def test_a_day_never_changes_once_the_next_day_is_known(min_coverage):
    """Per-partition determinism: row t depends on rows <= t + 1 only."""
    p = _messy()
    cfg = CleaningConfig(window=30, min_coverage=min_coverage)
    full = clean_prices(p, cfg).returns
    for cut in (25, 41, 60, 61, 75):
        part = clean_prices(p.iloc[: cut + 1], cfg).returns  # day cut-1 has its next day
        pd.testing.assert_frame_equal(part.iloc[:cut], full.iloc[:cut])


def test_the_last_day_is_provisional_only_for_a_look_ahead_rule():
    p = prices({"A": [100, 100, 40, 100]})
    assert clean_prices(p.iloc[:3]).returns["A"].iloc[2] == pytest.approx(-0.6)
    assert clean_prices(p).returns["A"].iloc[2] == 0.0


def test_messy_panel_counts_every_rule():
    counts = clean_prices(_messy(), CleaningConfig(window=30, min_coverage=0.9)).counts()
    assert counts["split_pair"] == 4 and counts["absurd"] == 1 and counts["stale"] >= 5
    assert counts["filled"] > 0


def test_cleaning_config_is_validated():
    with pytest.raises(ValueError, match="min_coverage"):
        CleaningConfig(min_coverage=0.0)
    with pytest.raises(ValueError, match="split_move"):
        CleaningConfig(split_move=1.0)
