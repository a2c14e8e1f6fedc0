# The two commands of the README: `make run` and `make test`. Each sets itself up
# (virtual environment + `pip install -e ".[dev]"`) when .venv is missing.
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: run test ui lint bench validate clean setup study readme

setup: $(STAMP) $(DAGSTER_HOME)/dagster.yaml

$(STAMP): pyproject.toml
	test -x $(BIN)/python || python3 -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

## run: materialise the whole graph for the latest trading day into data/ and print the scorecard
run: setup
	$(BIN)/vae run

## test: the fast, seeded test suite (slow / network / gpu tests are opt-in markers)
test: setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(BIN)/pytest -q

## ui: the Dagster UI on http://127.0.0.1:3000 (lineage, checks, launchpad, schedules);
## `vae ui` first says when another process holds the DuckDB file
ui: setup
	$(BIN)/vae ui --port 3000

validate: setup
	$(BIN)/dagster definitions validate -w workspace.yaml

lint: setup
	$(BIN)/ruff check .

## bench: every scale / speed figure in one table, `vae backfill` of 1 / 21 / 250 new days included
## (BENCH_ARGS="--quick": N = 60, 500 and backfills of 1 and 21 days; "--skip backfill": none)
bench: setup
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

## study: `vae study` on the real panel of ../shared/data/real (skipped when it is absent);
## writes benchmarks/results/real_data_study.json (STUDY_ARGS="--names 100 --epochs 50": a quick look)
REAL      := ../shared/data/real
STUDY_OUT := benchmarks/results/real_data_study.json
STUDY_CMD  = vae study $(REAL)/sp500_2015_2020_prices.csv.gz --sectors $(REAL)/sp500_sectors.csv \
	--factors $(REAL)/ff5_mom_daily.csv --macro $(REAL)/vix_termspread_daily.csv \
	--window 504 --rebalance 21 --latent 4 --epochs 300 --n-boot 2000 $(STUDY_ARGS)
study: setup
	@if [ ! -d "$(REAL)" ]; then echo "study: $(REAL) not found (the real data is not shipped): skipped"; exit 0; fi; \
	set -e; tmp=$$(mktemp -d); \
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(BIN)/$(STUDY_CMD) --out $$tmp/study.json; \
	$(BIN)/python scripts/record_result.py $(STUDY_OUT) --from $$tmp/study.json --command "$(STUDY_CMD)"; \
	rm -rf $$tmp; echo "study: $(STUDY_OUT) written; make readme renders its table"

## readme: rewrite README.md's result tables from benchmarks/results/*.json (README_ARGS=--check: diff, no write)
readme: setup
	$(BIN)/python scripts/readme_tables.py $(README_ARGS)

clean:
	rm -rf $(DAGSTER_HOME) data/*.duckdb data/*.duckdb.wal
