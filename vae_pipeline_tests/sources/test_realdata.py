"""The csv source on the real S&P 500 files in ../shared/data/real (skipped when absent).

The project never copies that data: these tests read it in place, and the slow one runs the
whole asset graph on it for one partition.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vae_pipeline.settings import PipelineSettings
from vae_pipeline.sources import default_day, make_source

REAL = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "real"
PRICES = REAL / "sp500_2015_2020_prices.csv.gz"


@pytest.fixture(scope="module")
def real_settings():
    if not PRICES.exists():
        pytest.skip(f"real data not present at {REAL}")
    return PipelineSettings(
        source="csv",
        start="2015-01-05",
        prices_path=PRICES,
        sectors_path=REAL / "sp500_sectors.csv",
        factors_path=REAL / "ff5_mom_daily.csv",
        macro_path=REAL / "vix_termspread_daily.csv",
    )


def test_real_panel_loads_clean_with_its_observables(real_settings):
    src = make_source(real_settings)
    wide = src.panel.returns
    assert wide.shape == (1439, 471) and wide.notna().all().all()
    assert src.first_date() == pd.Timestamp("2015-01-06")
    assert src.last_date() == pd.Timestamp("2020-09-22")
    assert default_day(real_settings, pd.Timestamp("2024-06-03")) == pd.Timestamp("2020-09-22")
    # The README's sanity figures, and a clean file needs no intervention.
    assert wide.stack().mean() == pytest.approx(0.00053, abs=2e-5)
    assert wide.stack().std() == pytest.approx(0.0204, abs=5e-4)
    assert sum(src.panel.cleaned.counts().values()) == 0
    obs = src.observables(wide.index[0], wide.index[-1]).set_index("date")
    assert np.corrcoef(wide.mean(axis=1), obs["market"])[0, 1] == pytest.approx(0.974, abs=0.005)
    assert obs["volatility"].between(9, 83).all() and obs["macro_slope"].abs().max() < 3
    info = src.observables_report()
    assert (
        "mkt_rf + rf" in info["observable_market"] and "vix_close" in info["observable_volatility"]
    )
    sectors = src.sectors()
    assert (sectors != "Unknown").sum() == 462 and sectors.nunique() == 12  # 11 + Unknown


def test_real_panel_with_vendor_errors_injected_is_cleaned_back(real_settings, tmp_path):
    prices = pd.read_csv(PRICES)
    messy = prices.copy()
    messy.loc[300, "AAPL"] *= 0.4  # a split booked a day early: -60 % then +150 %
    messy.loc[500:508, "MSFT"] = messy.loc[500, "MSFT"]  # stale for 8 days
    messy["XOM"] = messy["XOM"].astype(object)
    messy.loc[700, "XOM"] = "#N/A"  # a hole
    path = tmp_path / "messy.csv.gz"
    messy.to_csv(path, index=False)
    src = make_source(real_settings.with_values(prices_path=path))
    counts = src.panel.cleaned.counts()
    assert counts["split_pair"] == 2 and counts["stale"] == 4 and counts["gap_return_dropped"] == 2
    clean = make_source(real_settings).panel.returns
    got = src.panel.returns
    assert got["AAPL"].iloc[299] == 0.0  # the -60 % day (price row 300 = return row 299)
    assert got["XOM"].isna().sum() == 2  # the hole and the return spanning it
    untouched = [c for c in clean.columns if c not in ("AAPL", "MSFT", "XOM")]
    pd.testing.assert_frame_equal(got[untouched], clean[untouched])


@pytest.mark.slow
def test_whole_graph_on_the_real_panel(real_settings, tmp_path):
    """One partition end to end on 471 real names (W=504, H=21), 30 epochs (~1-2 min)."""
    import duckdb
    from dagster import DagsterInstance

    from vae_pipeline.pipeline.definitions import build_definitions
    from vae_pipeline.pipeline.runner import materialise_day

    settings = real_settings.with_values(db_path=tmp_path / "real.duckdb", epochs=30)
    day = default_day(settings, pd.Timestamp("2024-06-03"))
    results = materialise_day(
        build_definitions(settings), day, settings, DagsterInstance.ephemeral()
    )
    assert all(r.success for r in results)
    with duckdb.connect(str(settings.storage.db_path), read_only=True) as con:
        card = con.execute("select * from minvar_scorecard where date = ?", [day]).df()
        names = con.execute(
            "select count(*) from standardised_panel where date = ?", [day]
        ).fetchall()[0][0]
    assert names == 471 and {"vae", "cvae", "ledoit_wolf", "pca"} <= set(card["estimator"])
