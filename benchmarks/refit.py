"""One full refit of partition d, called directly and materialised through Dagster.

    .venv/bin/python benchmarks/refit.py --n 500 --mode direct
    .venv/bin/python benchmarks/refit.py --n 500 --mode dagster --repeats 3

Both modes do the same work for trading day d (2024-06-03) with W = 504, H = 21 and
T = 2520 days of seed-42 synthetic history: the day's cross-section, the standardised
window, VAE + CVAE training (300 full-batch epochs each), latent factors, interpretation
(with PCA and factor-analysis baselines), the stock embedding (PCA, no UMAP), every
covariance estimator kept as its min-variance decision, the scorecard of the decision made
at d - H, the anomaly report and its test of the d - H flags, and the horse-race roll-up.

- ``direct``: the core refit stages (``vae_pipeline.core.refit``, the ones the assets call)
  on in-memory frames; the decision chain of d - H is computed first, untimed.
- ``dagster``: the history up to d - 1 and the decision chain of d - H are materialised
  first (untimed) into a fresh DuckDB file with a temporary SQLite Dagster instance; then
  the partitioned assets of d plus ``horse_race`` are materialised in one in-process run.

Each mode prints one JSON line: best-of-``repeats`` seconds, per-stage seconds, the peak
resident memory of the timed part (VmHWM, reset before it), and for ``dagster`` the bytes
the partition added to the DuckDB file. Run each mode in its own process (``run_all.py``
does) so the peaks do not mix.

- ``both``: the overhead ratio on a shared machine. Both are prepared, then the timed runs
  alternate (direct, dagster, direct, ...) in one process, so a load spike from another user
  hits both; it prints the best-of-``repeats`` of each, their ratio, the median of the paired
  ratios, and the same for CPU seconds (``time.process_time``: less sensitive to other load).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

DAY = pd.Timestamp("2024-06-03")  # a Monday; d - 21 trading days is 2024-05-02
HISTORY, WINDOW, HORIZON, EPOCHS = 2520, 504, 21, 300
PARTITIONED = [
    "raw_returns", "market_observables", "standardised_panel", "trained_vae", "trained_cvae",
    "latent_factors", "factor_interpretation", "covariance_estimates", "minvar_scorecard",
    "anomaly_report", "stock_embedding",
]  # fmt: skip
ROLL_UPS = ["horse_race"]


def bench_settings(n: int, db_path: Path, history: int = HISTORY, epochs: int = EPOCHS):
    """Settings of the benchmark: N names, T = ``history`` trading days up to DAY."""
    from vae_pipeline.core.calendar import shift_trading_days
    from vae_pipeline.settings import PipelineSettings

    start = shift_trading_days(DAY, -(history - 1))
    return PipelineSettings(
        db_path=db_path, start=f"{start:%Y-%m-%d}", n_names=n, window=WINDOW, horizon=HORIZON,
        epochs=epochs, seed=42, device="cpu", embedding="pca", min_names=10,
    )  # fmt: skip


# -- peak memory ---------------------------------------------------------------------------
def reset_peak_rss() -> None:
    """Reset VmHWM (Linux >= 4.0: writing 5 to clear_refs); no-op elsewhere."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_bytes() -> int:
    """VmHWM of this process (peak resident set since start or the last reset)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Stages:
    """Accumulates wall time per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        t0 = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


# -- direct: the same computation without Dagster ------------------------------------------
class DirectRefit:
    """Partition d's computation on in-memory frames through the core refit stages."""

    def __init__(self, settings) -> None:
        from vae_pipeline.sources import make_source

        self.settings = settings
        self.source = make_source(settings)
        self.decision = None  # (decision date, VAE, decision frame) of d - H

    def _window(self, panel, day) -> pd.DataFrame:
        from vae_pipeline.core.panel import expected_window
        from vae_pipeline.core.validation import window_complete

        expected = expected_window(day, self.settings.evaluation.window)
        wide = panel.returns.loc[expected[0] : expected[-1]]
        if window_complete(wide.index, expected):
            raise RuntimeError("incomplete window")
        return wide.dropna(axis=1, how="any")

    def _config(self):
        from vae_pipeline.core.refit import cold_train_config

        return cold_train_config(self.settings.model, seed=self.settings.seed)

    def _decisions(self, window, day, models, regimes):
        from vae_pipeline.core.refit import estimate_decisions

        tickers = list(window.columns)
        decisions = estimate_decisions(
            window, models, regimes, k=self.settings.model.latent_dim,
            oracle=self.source.oracle_covariance(day, tickers), seed=self.settings.seed,
        )  # fmt: skip
        if decisions.psd_problems or decisions.weight_problems:
            raise RuntimeError(
                f"covariance problems: {decisions.psd_problems + decisions.weight_problems}"
            )
        return decisions.frame

    def prepare(self) -> None:
        """The decision of d - H (models and min-variance weights), untimed."""
        from vae_pipeline.core.calendar import shift_trading_days
        from vae_pipeline.core.refit import fit_models

        decision = shift_trading_days(DAY, -self.settings.evaluation.horizon)
        panel = self.source.panel(decision)
        window = self._window(panel, decision)
        regimes = panel.observables["regime"].reindex(window.index).to_numpy(dtype=int)
        models = fit_models(window, regimes, self._config())
        self.decision = (
            decision,
            models.for_estimator("vae"),
            self._decisions(window, decision, models, regimes),
        )

    def run(self) -> Stages:
        """Partition d, timed by stage."""
        from vae_pipeline.core.covariance import REGISTRY
        from vae_pipeline.core.horse_race import summarise_scorecards
        from vae_pipeline.core.refit import (
            embed_stocks,
            evaluate_anomalies,
            fit_models,
            interpret_factors,
            latent_means,
            score_decision,
        )
        from vae_pipeline.core.standardise import Standardiser
        from vae_pipeline.core.validation import check_returns

        s, src, st = self.settings, self.source, Stages()
        day = DAY
        with st("ingest"):
            long = src.returns(day, day)
            if any(check_returns(long, s.data.min_names).values()):
                raise RuntimeError("bad cross-section")
            src.observables(day, day)
            panel = src.panel(day)
        with st("standardised_panel"):
            window = self._window(panel, day)
            z = Standardiser().fit(window).transform(window)
            z.mean(axis=0), z.std(axis=0)
        observables = panel.observables
        regimes = observables["regime"].reindex(window.index).to_numpy(dtype=int)
        cfg = self._config()
        with st("trained_vae"):  # the headline model (latent_factors and the anomalies read it)
            vae = fit_models(window, None, cfg, names=["vae"]).for_estimator("vae")
        with st("trained_cvae"):
            cvae = fit_models(window, regimes, cfg, names=["cvae"]).for_estimator("cvae")
        with st("latent_factors"):
            latents = latent_means(vae, window)
        with st("factor_interpretation"):
            obs = observables.loc[window.index, ["market", "volatility", "macro_slope"]]
            truth = src.true_factors(window.index[0], day)
            interpret_factors(latents, window, obs, truth, seed=s.seed)
        with st("stock_embedding"):
            embed_stocks(latents, window, src.sectors(), method="pca", seed=s.seed)
        with st("models"):  # the pipeline's other model assets (one per registry model)
            given = {REGISTRY["vae"].model_key: vae, REGISTRY["cvae"].model_key: cvae}
            models = fit_models(window, regimes, cfg, given=given)
        with st("covariance_estimates"):
            self._decisions(window, day, models, regimes)
        decision, past_vae, weights = self.decision
        with st("minvar_scorecard"):
            held = panel.returns.loc[
                (panel.returns.index > decision) & (panel.returns.index <= day)
            ]
            card = score_decision(weights, held).assign(decision_date=decision, date=day)
        with st("anomaly_report"):
            evaluate_anomalies(
                vae, window, observables["market"], model_then=past_vae,
                window_then=self._window(panel, decision), held_returns=held,
                planted=src.planted_anomalies(), seed=s.seed,
            )  # fmt: skip
        with st("horse_race"):
            summarise_scorecards(card, horizon=s.evaluation.horizon)
        return st


# -- dagster: the same computation materialised ---------------------------------------------
class DagsterRefit:
    """The partition materialised in-process with a temporary SQLite instance."""

    def __init__(self, settings, home: Path, instance: str = "sqlite") -> None:
        from vae_pipeline.pipeline.definitions import build_definitions

        self.settings = settings
        self.defs = build_definitions(settings)
        self.job = self.defs.resolve_implicit_global_asset_job_def()
        self.instance = make_instance(instance, home)

    def _run(self, names, instance=None, **kwargs):
        from dagster import AssetKey

        result = self.job.execute_in_process(
            instance=instance or self.instance,
            asset_selection=[AssetKey(n) for n in names],
            **kwargs,
        )
        if not result.success:
            raise RuntimeError(f"run of {names} failed")
        return result

    def prepare(self) -> dict[str, float]:
        """History up to d - 1 (one single run) and the decision chain of d - H (untimed)."""
        from dagster import DagsterInstance

        from vae_pipeline.core.calendar import shift_trading_days
        from vae_pipeline.pipeline.runner import (
            DECISION_ASSETS,
            HISTORY_ASSETS,
            RANGE_END_TAG,
            RANGE_START_TAG,
        )

        seconds = {}
        t0 = time.perf_counter()
        before = shift_trading_days(DAY, -1)
        # An in-memory instance for the 10-year history: its ~2 x 2600 partition events
        # would take minutes in SQLite and are not what is measured.
        self._run(HISTORY_ASSETS, instance=DagsterInstance.ephemeral(),
                  tags={RANGE_START_TAG: self.settings.data.start,
                        RANGE_END_TAG: f"{before:%Y-%m-%d}"})  # fmt: skip
        seconds["history"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        decision = shift_trading_days(DAY, -self.settings.evaluation.horizon)
        self._run(DECISION_ASSETS, partition_key=f"{decision:%Y-%m-%d}")
        seconds["decision_chain"] = time.perf_counter() - t0
        return seconds

    def run(self, day: pd.Timestamp = DAY, names=None) -> tuple[Stages, object]:
        st = Stages()
        with st("run"):
            result = self._run(names or PARTITIONED + ROLL_UPS, partition_key=f"{day:%Y-%m-%d}")
        for step in self.instance.get_run_step_stats(result.run_id):
            if step.end_time and step.start_time:
                st.seconds[step.step_key] = step.end_time - step.start_time
        return st, result

    def partition_bytes(self, before: int) -> tuple[int, dict[str, int]]:
        """Bytes the partition added to the checkpointed file, and its rows per table."""
        import duckdb

        size = checkpointed_size(self.settings.storage.db_path)
        rows = {}
        with duckdb.connect(str(self.settings.storage.db_path), read_only=True) as con:
            for table in PARTITIONED:
                rows[table] = con.execute(
                    f'select count(*) from main."{table}" where date = ?', [DAY.to_pydatetime()]
                ).fetchall()[0][0]
        return size - before, rows

    def stored_bytes(self, copies: int = 20) -> dict[str, float]:
        """Per-partition bytes without the file's block rounding: partition d's rows of every
        table copied under ``copies`` dates into a scratch DuckDB file (``duckdb``: its
        checkpointed size over ``copies``), and the same rows as uncompressed Arrow (``arrow``)."""
        import duckdb

        scratch = self.settings.storage.db_path.with_name("scratch.duckdb")
        day = DAY.to_pydatetime()
        arrow = 0
        with duckdb.connect(str(scratch)) as con:
            con.execute(f"attach '{self.settings.storage.db_path}' as src (read_only)")
            for table in PARTITIONED:
                arrow += con.execute(f'select * from src.main."{table}" where date = ?',
                                     [day]).fetch_arrow_table().nbytes  # fmt: skip
                con.execute(f'create table "{table}" as select * from src.main."{table}" '
                            "where date = ? limit 0", [day])  # fmt: skip
                for i in range(copies):
                    con.execute(
                        f'insert into "{table}" select * replace (date + to_days({i}) as date) '
                        f'from src.main."{table}" where date = ?', [day])  # fmt: skip
            con.execute("detach src")
            con.execute("checkpoint")
        empty = self.settings.storage.db_path.with_name("empty.duckdb")
        duckdb.connect(str(empty)).close()
        size = (scratch.stat().st_size - empty.stat().st_size) / copies
        return {"duckdb": size, "arrow": float(arrow)}


def make_instance(kind: str, home: Path):
    """A Dagster instance: ``memory`` (ephemeral), ``sqlite`` (a temporary DAGSTER_HOME, the
    laptop default) or ``postgres`` (``deploy/dagster.yaml``, server from DAGSTER_PG_*)."""
    import shutil

    from dagster import DagsterInstance

    if kind == "memory":
        return DagsterInstance.ephemeral()
    home.mkdir(parents=True, exist_ok=True)
    if kind == "sqlite":
        return DagsterInstance.local_temp(str(home))
    if kind == "postgres":
        shutil.copy(Path(__file__).resolve().parents[1] / "deploy" / "dagster.yaml", home)
        return DagsterInstance.from_config(str(home))
    raise ValueError(f"unknown instance kind {kind!r}: memory, sqlite or postgres")


def checkpointed_size(db_path: Path) -> int:
    """The DuckDB file's size after a CHECKPOINT (the WAL folded in)."""
    import duckdb

    with duckdb.connect(str(db_path)) as con:
        con.execute("CHECKPOINT")
    return db_path.stat().st_size


# -- entry point ---------------------------------------------------------------------------
def measure(
    n: int, mode: str, repeats: int, history: int, epochs: int, instance: str = "sqlite"
) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"vae_bench_{mode}_{n}_") as tmp:
        tmp = Path(tmp)
        settings = bench_settings(n, tmp / "bench.duckdb", history=history, epochs=epochs)
        out: dict = {"n": n, "mode": mode, "instance": instance if mode == "dagster" else None,
                     "history": history, "window": WINDOW,
                     "epochs": epochs, "load_before": os.getloadavg()[0]}  # fmt: skip
        t0 = time.perf_counter()
        if mode == "direct":
            runner = DirectRefit(settings)
            runner.prepare()
        else:
            runner = DagsterRefit(settings, tmp / "home", instance)
            out["prepare"] = runner.prepare()
            before = checkpointed_size(settings.storage.db_path)
        out["prepare_seconds"] = time.perf_counter() - t0
        best, stages, peak = np.inf, {}, 0
        for _ in range(repeats):
            reset_peak_rss()
            t0 = time.perf_counter()
            found = runner.run()
            seconds = time.perf_counter() - t0
            peak = max(peak, peak_rss_bytes())
            if mode == "dagster":
                found = found[0]
                if "partition_bytes" not in out:  # the first write of the partition
                    out["partition_bytes"], out["rows"] = runner.partition_bytes(before)
                    out["db_bytes"] = settings.storage.db_path.stat().st_size
                    try:
                        out["stored_bytes"] = runner.stored_bytes()
                    except Exception as exc:  # a measurement, never a reason to fail the run
                        out["stored_bytes_error"] = repr(exc)
            if seconds < best:
                best, stages = seconds, found.seconds
        out.update(seconds=best, stages=stages, peak_rss=peak, load_after=os.getloadavg()[0])
    return out


def measure_both(n: int, repeats: int, history: int, epochs: int, instance: str = "memory") -> dict:
    """Direct and Dagster runs of partition d alternating in one process (see ``both``)."""
    with tempfile.TemporaryDirectory(prefix=f"vae_bench_both_{n}_") as tmp:
        tmp = Path(tmp)
        direct = DirectRefit(bench_settings(n, tmp / "direct.duckdb", history, epochs))
        dagster = DagsterRefit(bench_settings(n, tmp / "dagster.duckdb", history, epochs),
                               tmp / "home", instance)  # fmt: skip
        t0 = time.perf_counter()
        direct.prepare()
        dagster.prepare()
        out: dict = {"n": n, "mode": "both", "instance": instance, "history": history,
                     "window": WINDOW, "epochs": epochs, "repeats": repeats,
                     "prepare_seconds": time.perf_counter() - t0,
                     "load_before": os.getloadavg()[0]}  # fmt: skip
        wall: dict[str, list[float]] = {"direct": [], "dagster": []}
        cpu: dict[str, list[float]] = {"direct": [], "dagster": []}
        stages: dict[str, dict] = {}
        for i in range(repeats):
            order = [("direct", direct), ("dagster", dagster)]
            for name, runner in order if i % 2 == 0 else order[::-1]:
                t0, c0 = time.perf_counter(), time.process_time()
                found = runner.run()
                wall[name].append(time.perf_counter() - t0)
                cpu[name].append(time.process_time() - c0)
                found = found[0] if name == "dagster" else found
                if wall[name][-1] == min(wall[name]):
                    stages[name] = {k: round(v, 4) for k, v in found.seconds.items()}
        for kind, values in (("seconds", wall), ("cpu_seconds", cpu)):
            d, g = min(values["direct"]), min(values["dagster"])
            paired = [b / a - 1.0 for a, b in zip(values["direct"], values["dagster"], strict=True)]
            out[kind] = {"direct": d, "dagster": g, "all_direct": values["direct"],
                         "all_dagster": values["dagster"]}  # fmt: skip
            out[f"overhead_{kind}"] = g / d - 1.0
            out[f"overhead_{kind}_paired_median"] = float(np.median(paired))
        out.update(stages=stages, load_after=os.getloadavg()[0])
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--mode", choices=["direct", "dagster", "both"], default="direct")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--history", type=int, default=HISTORY, help="trading days T")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument(
        "--instance",
        choices=["memory", "sqlite", "postgres"],
        default="sqlite",
        help="Dagster instance of the timed run (dagster mode)",
    )
    args = parser.parse_args(argv)
    if args.mode == "both":
        print(
            json.dumps(measure_both(args.n, args.repeats, args.history, args.epochs, args.instance))
        )
        return
    print(
        json.dumps(
            measure(args.n, args.mode, args.repeats, args.history, args.epochs, args.instance)
        )
    )


if __name__ == "__main__":
    main()
