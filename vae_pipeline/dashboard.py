"""Streamlit dashboard of the stored pipeline results: ``vae dashboard`` (127.0.0.1, headless)
or ``streamlit run vae_pipeline/dashboard.py``.

Pick a partition and an estimator; the same figures as the HTML report are drawn from the
configured store (the DuckDB file ``VAE_PIPELINE_DB``, or the Parquet root). The file is never
held open: each read opens a read-only connection, runs a few partition-filtered queries and
closes it within milliseconds (retrying while the pipeline holds the lock), and the result is
cached, so the pipeline's writes are never blocked by a browser tab left open.
"""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from vae_pipeline.report import figures
from vae_pipeline.report.build import (
    anomaly_frames,
    histories,
    regime_shift_figure,
    scorecard_of_day,
)
from vae_pipeline.report.data import read_partition, stored_days
from vae_pipeline.settings import PipelineSettings
from vae_pipeline.store.factory import store_for

READ_TIMEOUT = 20.0  # seconds to wait for the pipeline to release the file


def _store():
    """The configured store, read-only (settings are read once per script run)."""
    return store_for(PipelineSettings.from_env(), read_only=True, lock_wait=READ_TIMEOUT)


@st.cache_data(ttl=10, show_spinner=False)
def load_days(db: str) -> list[pd.Timestamp]:
    return stored_days(_store())


@st.cache_data(ttl=60, show_spinner="reading the store...")
def load_partition(db: str, day: pd.Timestamp):
    started = time.perf_counter()
    data = read_partition(_store(), day)
    return data, time.perf_counter() - started, pd.Timestamp.now()


@st.cache_data(ttl=600, show_spinner="decoding the CVAE under each regime...")
def cvae_figure(db: str, day: pd.Timestamp, seed: int):
    data, *_ = load_partition(db, day)
    return regime_shift_figure(data, seed=seed)


def show(fig) -> None:
    st.plotly_chart(fig, theme=None)


def main() -> None:
    st.set_page_config(page_title="vae_pipeline dashboard", layout="wide")
    st.title("vae_pipeline: VAE factors and the min-variance horse race")
    try:
        settings = PipelineSettings.from_env()
    except ValueError as exc:
        st.error(str(exc))
        st.stop()
    store = _store()
    db = store.describe()
    if not store.exists():
        st.info(f"No data at `{db}` yet: run `make run` (or `vae run`) first, then reload.")
        st.stop()
    try:
        days = load_days(db)
    except (RuntimeError, OSError) as exc:  # DuckDB's lock or file errors, a remote root's
        st.warning(f"Could not read `{db}` right now ({exc}); reload in a moment.")
        st.stop()
    if not days:
        st.info(f"Nothing materialised in `{db}` yet: run `make run` first, then reload.")
        st.stop()

    with st.sidebar:
        st.caption(f"database `{db}`")
        day = st.selectbox("Partition", days, format_func=lambda d: f"{d:%Y-%m-%d}")
        if st.button("Reload from the database"):
            st.cache_data.clear()
            st.rerun()
    try:
        data, seconds, read_at = load_partition(db, day)
    except (RuntimeError, OSError) as exc:
        st.warning(f"The pipeline is holding the database ({exc}); reload in a moment.")
        st.stop()
    estimators = sorted(data.scorecards["estimator"].unique()) if len(data.scorecards) else []
    with st.sidebar:
        estimator = st.selectbox(
            "Estimator",
            estimators,
            index=estimators.index("vae") if "vae" in estimators else 0,
        )
        st.caption(
            f"read at {read_at:%H:%M:%S.%f}"[:-3] + f" in {seconds * 1000:.0f} ms "
            "(one short read-only connection; cached for a minute)"
        )

    card = scorecard_of_day(data)
    st.subheader(f"Partition {day:%Y-%m-%d}")
    if len(card) and estimator:
        vol = card.set_index("estimator")["realised_vol"]
        cols = st.columns(4)
        if estimator in vol:
            cols[0].metric(f"{estimator} realised vol", f"{vol[estimator]:.2%}")
        for col, ref in zip(cols[1:], ("ledoit_wolf", "pca", "oracle"), strict=False):
            if ref in vol and estimator in vol:
                col.metric(
                    f"vs {ref}",
                    f"{vol[ref]:.2%}",
                    delta=f"{vol[estimator] - vol[ref]:+.2%} ({estimator} - {ref})",
                    delta_color="inverse",
                )
    names = ["Horse race", "Latent factors", "Training", "Anomalies", "Stock map", "CVAE regimes"]
    tabs = st.tabs([*names, "Beta sweep"])
    with tabs[0]:
        st.markdown("#### Min-variance scorecard")
        pct = st.column_config.NumberColumn(format="percent")
        st.dataframe(
            card, hide_index=True, column_config={"realised_vol": pct, "predicted_vol": pct}
        )
        show(figures.realised_vol(data.scorecards, highlight=estimator))
        show(figures.horse_race_bars(data.horse_race))
        if len(data.weights) and estimator:
            chosen = [estimator] + (["ledoit_wolf"] if estimator != "ledoit_wolf" else [])
            show(figures.minvar_weights(data.weights, chosen))
    with tabs[1]:
        show(figures.latent_trajectories(data.latents, data.observables))
        show(figures.correlation_heatmap(data.abs_corr))
        if not data.recovery.empty:
            show(figures.factor_recovery(data.recovery))
    with tabs[2]:
        show(figures.training_loss(histories(data)))
    with tabs[3]:
        resid, flags = anomaly_frames(data)
        show(figures.anomaly_drawdowns(resid, flags, data.decision_date))
        st.dataframe(data.anomalies.drop(columns=["date"], errors="ignore"), hide_index=True)
    with tabs[4]:
        if len(data.embedding):
            method = str(data.embedding["method"].iloc[0])
            show(figures.embedding_map(data.embedding.set_index("ticker"), method=method))
    with tabs[5]:
        show(cvae_figure(db, day, settings.seed))
    with tabs[6]:
        st.caption("The stored VAE's configuration refit at six values of beta on its window.")
        if data.sweep is None:
            st.info(
                "No beta sweep stored for this day (it trains six models, so it runs on "
                "demand): `dagster asset materialize -m vae_pipeline.pipeline.definitions "
                f"--select beta_sweep --partition {day:%Y-%m-%d}`"
            )
        else:
            beta = data.models["vae"].config.beta if "vae" in data.models else None
            show(figures.beta_tradeoff(data.sweep, chosen_beta=beta))
            st.dataframe(data.sweep, hide_index=True)


main()
