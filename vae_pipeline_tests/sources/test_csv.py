"""The csv source on messy files: layouts, refusals naming file / ticker / date, observables,
and the raw_returns gates that tell an outage from a holiday (offline, tiny files)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vae_pipeline.core.calendar import trading_days
from vae_pipeline.settings import PipelineSettings
from vae_pipeline.sources import CsvSource, DataFileError, default_day, make_source
from vae_pipeline.sources.files import load_factors, load_panel, load_sectors

DAYS = trading_days("2024-01-02", "2024-03-28")


def price_frame(n_days: int = 40, n_names: int = 6, seed: int = 0) -> pd.DataFrame:
    """Wide prices on trading days: a ``date`` column, then tickers T0..T{n-1}."""
    rng = np.random.default_rng(seed)
    steps = 1 + rng.normal(0.0005, 0.01, (n_days, n_names))
    wide = pd.DataFrame(
        100 * np.cumprod(steps, axis=0), columns=[f"T{j}" for j in range(n_names)]
    ).round(4)
    wide.insert(0, "date", DAYS[:n_days].strftime("%Y-%m-%d"))
    return wide


def write(tmp_path, frame: pd.DataFrame, name: str = "prices.csv") -> str:
    path = tmp_path / name
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow")
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return str(path)


def source(path, **cleaning) -> CsvSource:
    settings = PipelineSettings(source="csv", prices_path=path, start="2024-01-02", **cleaning)
    return make_source(settings)


def expected_returns(frame: pd.DataFrame) -> pd.DataFrame:
    wide = frame.set_index(pd.to_datetime(frame["date"])).drop(columns="date").astype(float)
    return wide.pct_change().iloc[1:]


# ------------------------------------------------------------------ layouts


@pytest.mark.parametrize("name", ["prices.csv", "prices.csv.gz", "prices.parquet"])
def test_wide_prices_become_long_simple_returns(tmp_path, name):
    frame = price_frame()
    src = source(write(tmp_path, frame, name))
    long = src.returns(DAYS[0], DAYS[-1])
    assert list(long.columns) == ["date", "ticker", "ret"] and len(long) == 39 * 6
    got = long.pivot(index="date", columns="ticker", values="ret")
    np.testing.assert_allclose(got.to_numpy(), expected_returns(frame).to_numpy(), rtol=1e-10)
    assert src.first_date() == DAYS[1] and src.last_date() == DAYS[39]


def test_long_returns_and_long_prices_are_detected(tmp_path):
    frame = price_frame(n_days=10, n_names=3)
    rets = expected_returns(frame).rename_axis(index="date", columns="ticker")
    long = rets.stack().rename("ret").reset_index()
    long["date"] = long["date"].dt.strftime("%Y-%m-%d")
    data = load_panel(write(tmp_path, long.sample(frac=1, random_state=1), "long.csv"))
    assert data.kind == "returns" and data.notes["layout"] == "long returns"
    np.testing.assert_allclose(data.wide.to_numpy(), rets.to_numpy())
    lp = frame.melt("date", var_name="ticker", value_name="close")
    data = load_panel(write(tmp_path, lp, "long_prices.csv"))
    assert data.kind == "prices" and data.wide.shape == (10, 3)


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("abc", "non-numeric price 'abc' for ticker T2 on 2024-01-10"),
        ("-3.5", "non-positive price -3.5 for ticker T2 on 2024-01-10"),
        ("0", "non-positive price 0 for ticker T2 on 2024-01-10"),
        ("inf", "infinite price inf for ticker T2 on 2024-01-10"),
    ],
)
def test_bad_price_cells_are_refused_naming_file_ticker_and_date(tmp_path, cell, message):
    frame = price_frame().astype({"T2": object})
    frame.loc[6, "T2"] = cell  # 2024-01-10
    path = write(tmp_path, frame)
    with pytest.raises(DataFileError) as err:
        source(path).returns(DAYS[0], DAYS[-1])
    assert "prices.csv" in str(err.value) and message in str(err.value)


@pytest.mark.parametrize(
    ("value", "message"),
    [("x1", "non-numeric return 'x1'"), ("inf", "infinite return"), ("-1.5", "below -100 %")],
)
def test_bad_long_returns_are_refused(tmp_path, value, message):
    long = pd.DataFrame(
        {"date": ["2024-01-02", "2024-01-03"], "ticker": ["AAA", "BBB"], "ret": ["0.01", value]}
    )
    with pytest.raises(DataFileError) as err:
        load_panel(write(tmp_path, long, "rets.csv"))
    assert message in str(err.value) and "BBB on 2024-01-03" in str(err.value)
    assert "rets.csv" in str(err.value)


def test_empty_missing_and_wrongly_laid_out_files_are_refused(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("date,A,B\n")
    (tmp_path / "nodate.csv").write_text("when,A\n2024-01-02,1\n")
    (tmp_path / "nolabel.csv").write_text("date,,B\n2024-01-02,1,2\n")
    (tmp_path / "noticker.csv").write_text("date,ret\n2024-01-02,0.01\n")
    (tmp_path / "baddate.csv").write_text("date,A\n2024-01-02,1\nsoon,2\n")
    cases = {
        "empty.csv": "the file is empty",
        "header.csv": "holds no rows",
        "nodate.csv": "no 'date' column",
        "nolabel.csv": "a column without a name",
        "noticker.csv": "no 'ticker' column",
        "baddate.csv": "date 'soon' is not a date",
        "missing.csv": "no such file",
    }
    for name, message in cases.items():
        with pytest.raises(DataFileError) as err:
            source(str(tmp_path / name)).last_date()
        assert message in str(err.value) and name in str(err.value), name
    assert "expected either wide prices" in str(
        pytest.raises(DataFileError, load_panel, tmp_path / "nodate.csv").value
    )


def test_duplicate_dates_identical_are_dropped_conflicting_refused(tmp_path):
    frame = price_frame()
    twice = pd.concat([frame, frame.iloc[[5]]], ignore_index=True)
    data = load_panel(write(tmp_path, twice))
    assert data.notes["duplicate_rows_dropped"] == 1 and len(data.wide) == 40
    twice.loc[len(twice) - 1, "T3"] = 1.0
    with pytest.raises(DataFileError, match="date 2024-01-09 appears 2 times.*ticker T3"):
        load_panel(write(tmp_path, twice, "dup.csv"))
    long = pd.DataFrame({"date": ["2024-01-02"] * 2, "ticker": ["A", "A"], "ret": [0.01, 0.02]})
    with pytest.raises(DataFileError, match="ticker A on 2024-01-02 appears 2 times"):
        load_panel(write(tmp_path, long, "duplong.csv"))


def test_unsorted_dates_and_non_trading_rows(tmp_path):
    frame = price_frame()
    shuffled = frame.sample(frac=1, random_state=0)
    weekend = frame.iloc[[4]].assign(date="2024-01-06")  # a Saturday with copied prices
    holiday = frame.iloc[[10]].assign(date="2024-01-15")  # Martin Luther King Jr. Day
    data = load_panel(write(tmp_path, pd.concat([shuffled, weekend, holiday])))
    assert data.notes["unsorted_dates_sorted"] and data.notes["non_trading_rows_dropped"] == 2
    clean = load_panel(write(tmp_path, frame, "clean.csv"))
    pd.testing.assert_frame_equal(data.wide, clean.wide)


def test_a_ticker_without_data_and_one_missing_for_a_whole_window(tmp_path):
    frame = price_frame()
    frame["EMPTY"] = np.nan
    frame.loc[8:, "T5"] = np.nan  # T5 disappears after day 8
    src = source(write(tmp_path, frame), window=20)
    assert src.panel.notes["tickers_without_data"] == ["EMPTY"]
    assert "T5" not in src.window_universe(DAYS[39], 20)
    assert sorted(src.returns(DAYS[30], DAYS[39])["ticker"].unique()) == [f"T{j}" for j in range(5)]
    report = src.returns_report(DAYS[20], DAYS[39])
    assert report["window_universe"] == 5 and report["file_tickers_without_data"] == "EMPTY"


def test_stale_prices_and_split_errors_are_counted_in_the_report(tmp_path):
    frame = price_frame()
    frame.loc[10:17, "T1"] = frame.loc[10, "T1"]  # 7 unchanged prices
    frame.loc[25, "T2"] = frame.loc[25, "T2"] * 0.4  # -60 % then +150 %
    frame.loc[30:, "T3"] = frame.loc[30:, "T3"] * 10  # +900 % once
    src = source(write(tmp_path, frame))
    report = src.returns_report(DAYS[0], DAYS[-1])
    assert report["cleaned_stale"] == 3 and report["cleaned_split_pair"] == 2
    assert report["cleaned_absurd"] == 1 and report["cleaned_gap_return_dropped"] == 1
    ret = src.returns(DAYS[0], DAYS[-1])
    assert ret["ret"].abs().max() < 0.1  # every vendor error neutralised


# ------------------------------------------------------------------ sectors and observables


def test_sectors_accept_sector_or_gics_sector(tmp_path):
    a = write(
        tmp_path, pd.DataFrame({"ticker": ["T0", "T1"], "sector": ["Energy", "Utilities"]}), "a.csv"
    )
    b = write(
        tmp_path,
        pd.DataFrame({"ticker": ["T0"], "name": ["x"], "gics_sector": ["Energy"]}),
        "b.csv",
    )
    assert load_sectors(a).to_dict() == {"T0": "Energy", "T1": "Utilities"}
    assert load_sectors(b).to_dict() == {"T0": "Energy"}
    with pytest.raises(DataFileError, match="ticker and sector"):
        load_sectors(write(tmp_path, pd.DataFrame({"ticker": ["T0"]}), "c.csv"))
    settings = PipelineSettings(
        source="csv", prices_path=write(tmp_path, price_frame()), sectors_path=b
    )
    assert make_source(settings).sectors().to_dict() == {
        "T0": "Energy",
        **{f"T{j}": "Unknown" for j in range(1, 6)},
    }


def test_observables_fall_back_and_say_so(tmp_path):
    src = source(write(tmp_path, price_frame()))
    obs = src.observables(DAYS[0], DAYS[-1])
    info = src.observables_report()
    assert "equal-weight" in info["observable_market"]
    assert "realised vol" in info["observable_volatility"]
    assert "unavailable" in info["observable_macro_slope"]
    ew = src.returns(DAYS[0], DAYS[-1]).groupby("date")["ret"].mean()
    np.testing.assert_allclose(obs["market"].to_numpy(), ew.to_numpy())
    assert np.isfinite(obs[["market", "volatility", "macro_slope"]].to_numpy()).all()
    assert set(obs["regime"]) <= {0, 1}


def test_observables_from_french_and_fred_style_files(tmp_path):
    frame = price_frame()
    dates = DAYS[:40]
    rng = np.random.default_rng(1)
    french = (
        "This file was created by CMPT_ME_BEME_RETS_DAILY\n\n,Mkt-RF,SMB,HML,RF\n"
        + "".join(
            f"{d:%Y%m%d},{m:.2f},0.01,0.02,0.02\n"
            for d, m in zip(dates, rng.normal(0, 1, 40), strict=True)
        )
        + "\nCopyright 2024 Kenneth R. French\n"
    )
    (tmp_path / "ff.csv").write_text(french)
    macro = pd.DataFrame({"DATE": dates.strftime("%Y-%m-%d"), "VIXCLS": 15.0, "T10Y2Y": "0.5"})
    macro.loc[3, "T10Y2Y"] = "."  # FRED's missing value on a bond holiday
    factors, units = load_factors(tmp_path / "ff.csv")
    assert units.startswith("percent") and factors["rf"].iloc[0] == pytest.approx(0.0002)
    settings = PipelineSettings(
        source="csv",
        prices_path=write(tmp_path, frame),
        factors_path=tmp_path / "ff.csv",
        macro_path=write(tmp_path, macro, "macro.csv"),
    )
    src = make_source(settings)
    obs = src.observables(DAYS[0], DAYS[-1]).set_index("date")
    np.testing.assert_allclose(obs["market"], (factors["mkt_rf"] + factors["rf"]).loc[obs.index])
    assert (obs["volatility"] == 15.0).all() and (obs["macro_slope"] == 0.5).all()
    info = src.observables_report()
    assert "Fama-French mkt_rf + rf" in info["observable_market"]
    assert "VIXCLS" in info["observable_volatility"] and "T10Y2Y" in info["observable_macro_slope"]


def test_market_index_file_is_a_market_fallback(tmp_path):
    frame = price_frame()
    index = pd.DataFrame({"date": frame["date"], "SPX": np.linspace(4000, 4100, 40)})
    settings = PipelineSettings(
        source="csv",
        prices_path=write(tmp_path, frame),
        market_path=write(tmp_path, index, "spx.csv"),
    )
    src = make_source(settings)
    assert "index returns (spx.csv)" in src.observables_report()["observable_market"]
    obs = src.observables(DAYS[1], DAYS[1])
    assert obs["market"].iloc[0] == pytest.approx(index["SPX"].iloc[1] / 4000 - 1)


# ------------------------------------------------------------------ settings and the default day


def test_settings_read_the_real_data_variables(tmp_path):
    env = {
        "VAE_PIPELINE_SOURCE": "csv",
        "VAE_PIPELINE_PRICES": "p.csv",
        "VAE_PIPELINE_FACTORS": "f.csv",
        "VAE_PIPELINE_MACRO": "m.csv",
        "VAE_PIPELINE_MIN_COVERAGE": "0.95",
        "VAE_PIPELINE_WINSOR_LOW": "-0.5",
        "VAE_PIPELINE_STALE_DAYS": "0",
    }
    s = PipelineSettings.from_env(env)
    assert (s.data.min_coverage, s.data.winsor_low, s.data.stale_days) == (0.95, -0.5, 0)
    assert s.cleaning().max_gap == 24 and str(s.data.factors_path) == "f.csv"
    with pytest.raises(ValueError, match="VAE_PIPELINE_WINSOR_HIGH"):
        PipelineSettings.from_env({"VAE_PIPELINE_WINSOR_HIGH": "2"})
    with pytest.raises(ValueError, match="VAE_PIPELINE_TICKERS"):
        PipelineSettings.from_env({"VAE_PIPELINE_SOURCE": "yfinance"})


def test_default_day_is_the_sources_last_day_when_earlier(tmp_path):
    settings = PipelineSettings(source="csv", prices_path=write(tmp_path, price_frame()))
    assert default_day(settings, pd.Timestamp("2024-06-03")) == DAYS[39]
    assert default_day(settings, pd.Timestamp("2024-01-10")) == pd.Timestamp("2024-01-10")
    assert default_day(PipelineSettings(), pd.Timestamp("2024-06-03")) == pd.Timestamp("2024-06-03")


def test_a_day_is_the_same_whichever_span_asks_and_however_the_file_grows(tmp_path):
    frame = price_frame(n_days=60, n_names=8, seed=4)
    frame.loc[20, "T1"] = frame.loc[20, "T1"] * 0.4
    full = source(write(tmp_path, frame, "full.csv"))
    for cut in (20, 21, 40):
        part = source(write(tmp_path, frame.iloc[: cut + 2], f"part{cut}.csv"))
        day = DAYS[cut]
        pd.testing.assert_frame_equal(part.returns(day, day), full.returns(day, day))
        pd.testing.assert_frame_equal(
            full.returns(day, day),
            full.returns(DAYS[0], DAYS[-1]).query("date == @day").reset_index(drop=True),
        )


# ------------------------------------------------------------------ through the raw_returns asset


def _materialise(tmp_path, prices_path, partition=None, start=None, end=None, **overrides):
    from dagster import AssetKey, DagsterInstance

    from vae_pipeline.pipeline.definitions import build_definitions

    settings = PipelineSettings(
        db_path=tmp_path / "csv.duckdb",
        source="csv",
        prices_path=prices_path,
        start="2024-01-02",
        window=20,
        horizon=5,
        min_names=3,
        **overrides,
    )
    defs = build_definitions(settings)
    tags = (
        {}
        if partition
        else {
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        }
    )
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(
        instance=DagsterInstance.ephemeral(),
        asset_selection=[AssetKey("raw_returns"), AssetKey("market_observables")],
        partition_key=partition,
        tags=tags,
        raise_on_error=False,
    )


def test_raw_returns_tells_an_outage_from_a_holiday(tmp_path):
    frame = price_frame()
    path = write(tmp_path, frame[frame["date"] != "2024-01-10"])  # a trading day lost
    result = _materialise(tmp_path, path, start="2024-01-02", end="2024-01-19")  # MLK day inside
    failed = [c for c in result.get_asset_check_evaluations() if not c.passed]
    # both ingest assets refuse the lost day (nothing stored, no empty materialisation)
    assert sorted(c.check_name for c in failed) == ["enough_names", "observables_valid"]
    for check in failed:
        text = str(check.metadata["problems"].value)
        assert "on trading day 2024-01-10" in text
        assert "2024-01-15" not in text and "2024-01-02" not in text  # holiday; before history

    frame.loc[5, "T2"] *= 0.4  # a vendor split error on 2024-01-09, reversed on 2024-01-10
    ok = _materialise(
        tmp_path, write(tmp_path, frame, "ok.csv"), start="2024-01-02", end="2024-01-19"
    )
    assert ok.success
    meta = ok.asset_materializations_for_node("raw_returns")[0].metadata
    assert meta["cleaned_split_pair"].value == 2 and meta["names"].value == 6
    assert "every one of its 20 days" in meta["coverage_rule"].value
    obs_meta = ok.asset_materializations_for_node("market_observables")[0].metadata
    assert "equal-weight" in obs_meta["observable_market"].value


def test_raw_returns_after_the_files_end_fails_naming_the_end(tmp_path):
    path = write(tmp_path, price_frame(n_days=20))
    result = _materialise(tmp_path, path, partition="2024-02-05")
    failed = [c for c in result.get_asset_check_evaluations() if not c.passed]
    assert "the source's data ends on 2024-01-30" in str(failed[0].metadata["problems"].value)


def test_raw_returns_refuses_a_bad_file_with_its_message(tmp_path):
    frame = price_frame().astype({"T4": object})
    frame.loc[3, "T4"] = "n/a!"
    result = _materialise(tmp_path, write(tmp_path, frame), partition="2024-01-08")
    assert not result.success
    err = result.failure_data_for_node("raw_returns").error
    assert "non-numeric price 'n/a!' for ticker T4 on 2024-01-05" in err.cause.message


# ------------------------------------------------------------------ date spellings


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("%Y-%m-%d", "prices.csv"),  # ISO
        ("%d/%m/%Y", "prices.csv"),  # day first: 28/12 style, days above 12 prove it
        ("%m/%d/%Y", "prices.csv"),  # month first, proven the same way
        ("%d.%m.%y", "prices.csv.gz"),  # dots and a two-digit year
    ],
)
def test_dates_read_in_the_order_the_file_proves(tmp_path, fmt, name):
    frame = price_frame()  # 40 trading days from 2024-01-02: days 2..29 of the month
    iso = frame.copy()
    frame["date"] = pd.to_datetime(frame["date"]).dt.strftime(fmt)
    long = source(write(tmp_path, frame, name)).returns(DAYS[0], DAYS[-1])
    got = long.pivot(index="date", columns="ticker", values="ret")
    assert list(got.index) == list(DAYS[1:40])  # every day where it belongs, none dropped
    np.testing.assert_allclose(got.to_numpy(), expected_returns(iso).to_numpy(), rtol=1e-10)


def test_dates_that_fit_day_and_month_first_are_refused_naming_the_column(tmp_path):
    frame = price_frame(n_days=8).rename(columns={"date": "Date"})  # 2 .. 11 January
    frame["Date"] = pd.to_datetime(frame["Date"]).dt.strftime("%d/%m/%Y")
    with pytest.raises(DataFileError) as caught:
        load_panel(write(tmp_path, frame))
    message = str(caught.value)
    assert "column 'Date'" in message and "'02/01/2024'" in message
    assert "DD/MM/YYYY (day first) or MM/DD/YYYY (month first)" in message
    assert "YYYY-MM-DD" in message and "\n" not in message
