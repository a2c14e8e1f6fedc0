#!/usr/bin/env bash
# CI (issue 15): off one machine, for real. The whole graph for one partition and a short
# backfill, on a local Dask cluster (VAE_PIPELINE_DASK_WORKERS=2 worker processes) over
# Parquet files, with the PostgreSQL instance of .ci/postgres.sh (it calls this script with
# DAGSTER_PG_* exported); then the same runs in-process on a DuckDB file, and the two stores
# compared row for row (the models' weights byte for byte). The runs:
# `dagster asset materialize` for the first partition, then `vae backfill` of the next days (a
# few ranged single runs: history, decision chain, the rest).
# Prints the wall time of both, and checks from the PostgreSQL event log that every step of
# the Dask runs ran in a worker process, not in the run's own.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
: "${DAGSTER_PG_HOST:?run through .ci/postgres.sh: it starts the PostgreSQL instance}"
$BIN/python -c "import dagster_dask, dagster_postgres" 2>/dev/null \
  || $BIN/python -m pip install --quiet -e ".[dev,deploy,dask]"

work=$(mktemp -d /tmp/vae_dask.XXXXXX)
trap 'rm -rf "$work"' EXIT
export DAGSTER_HOME="$work/home"
mkdir -p "$DAGSTER_HOME" && cp deploy/dagster.yaml "$DAGSTER_HOME/"
# A small pipeline (the graph is the full one). One thread everywhere: Dask's nanny starts its
# workers with OMP_NUM_THREADS=1, and the in-process reference must sum in the same order.
export OMP_NUM_THREADS=1 VAE_PIPELINE_ENV_FILE=/dev/null VAE_PIPELINE_START=2024-01-02 \
  VAE_PIPELINE_N_NAMES=20 VAE_PIPELINE_WINDOW=60 VAE_PIPELINE_HORIZON=5 VAE_PIPELINE_EPOCHS=30 \
  VAE_PIPELINE_MIN_NAMES=5 VAE_PIPELINE_SEED=42
DAYS=(2024-06-03 2024-06-04 2024-06-05)  # the partition, then the backfill's two more
read -r H0 DECISIONS < <($BIN/python - "${DAYS[@]}" <<'PY'
import sys
from vae_pipeline.core.calendar import shift_trading_days
from vae_pipeline.pipeline.runner import history_start
from vae_pipeline.settings import PipelineSettings
s, days = PipelineSettings.from_env(), sys.argv[1:]
h = [f"{shift_trading_days(d, -s.evaluation.horizon):%Y-%m-%d}" for d in days]
print(f"{history_start(days[0], s):%Y-%m-%d}", ",".join(h))
PY
)
IFS=, read -r -a DH <<< "$DECISIONS"
M="$BIN/dagster asset materialize -m vae_pipeline.pipeline.definitions"

materialise_all() {  # one partition through the dagster CLI, then a short `vae backfill`
  $M --select 'raw_returns,market_observables' --partition-range "$H0...${DAYS[0]}"
  $M --select '*covariance_estimates' --partition "${DH[0]}"
  $M --select '*report' --partition "${DAYS[0]}"  # the daily graph (beta_sweep: on demand)
  $BIN/vae backfill --start "${DAYS[1]}" --end "${DAYS[-1]}"  # ranged single runs
}

# Dask over Parquet; the DuckDB path names a file that must never be made.
t0=$(date +%s)
(export VAE_PIPELINE_EXECUTOR=dask VAE_PIPELINE_DASK_WORKERS=2 VAE_PIPELINE_IO=parquet \
   VAE_PIPELINE_PARQUET_ROOT="$work/lake" VAE_PIPELINE_DB="$work/never/never.duckdb"
 materialise_all 2>"$work/dask.log" || { tail -50 "$work/dask.log"; exit 1; })
t1=$(date +%s)
(export VAE_PIPELINE_DB="$work/reference.duckdb"
 materialise_all 2>"$work/reference.log" || { tail -50 "$work/reference.log"; exit 1; })
t2=$(date +%s)
echo "wall time, ${#DAYS[@]} partitions + history: dask (2 workers, parquet) $((t1 - t0)) s," \
  "in-process (duckdb) $((t2 - t1)) s"

$BIN/python - "$work" "$t0" "$t1" "${DAYS[@]}" <<'PY'
import datetime as dt, sys
from pathlib import Path
import pandas as pd
from dagster import DagsterEventType, DagsterInstance, RunsFilter
from vae_pipeline.store import DuckDBStore, ModelStore, ParquetStore, Span

work, t0, t1, days = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
ref, lake = DuckDBStore(work / "reference.duckdb", read_only=True), ParquetStore(str(work / "lake"))
assert not (work / "never").exists() or not any((work / "never").glob("*.duckdb")), "dask made a DuckDB file"
span = Span.days(days[0], days[-1])
for table in ["raw_returns", "ground_truth", "standardised_panel", "latent_factors",
              "factor_interpretation", "covariance_estimates", "minvar_scorecard",
              "anomaly_report", "stock_embedding", "horse_race"]:
    a = ref.read(table, None if table == "horse_race" else span)
    b = lake.read(table, None if table == "horse_race" else span)
    order = [c for c in ("date", "estimator", "ticker", "name", "factor") if c in a.columns]
    assert len(a) and len(a) == len(b), (table, len(a), len(b))
    pd.testing.assert_frame_equal(a.sort_values(order, ignore_index=True),
                                  b.sort_values(order, ignore_index=True), check_exact=True, obj=table)
    print(f"{table:22s} {len(a):6d} rows, identical")
for name in sorted(t for t in lake.tables() if t.startswith("trained_")):
    a, b = ModelStore(ref).records(name, span), ModelStore(lake).records(name, span)
    assert len(a) == len(days) and [bytes(w) for w in a["weights"]] == [bytes(w) for w in b["weights"]], name
    print(f"{name:22s} {len(a):6d} models, weights byte-identical")
assert (work / "lake" / "reports" / f"report_{days[0]}.html").exists()  # a backfill writes none
with DagsterInstance.get() as instance:
    runs = instance.get_runs(RunsFilter(created_after=dt.datetime.fromtimestamp(t0, dt.timezone.utc),
                                        created_before=dt.datetime.fromtimestamp(t1, dt.timezone.utc)))
    ranged = [r for r in runs if "dagster/asset_partition_range_start" in r.tags]
    assert len(runs) >= 5 and all(r.is_success for r in runs), [r.status for r in runs]
    assert len(ranged) >= 3, len(ranged)  # the history of the partition, and the backfill's
    for run in runs:
        pids = {k: set() for k in ("run", "step")}
        for record in instance.all_logs(run.run_id):
            e = record.dagster_event
            if e is not None and e.event_type in (DagsterEventType.RUN_START, DagsterEventType.STEP_SUCCESS):
                pids["run" if e.event_type == DagsterEventType.RUN_START else "step"].add(e.pid)
        assert pids["step"] and not pids["step"] & pids["run"], (run.run_id, pids)
print(f"{len(runs)} Dask runs on PostgreSQL: every step in a worker process; reports on the Parquet root")
PY
echo "dask + parquet + postgres: identical to the in-process DuckDB run"
