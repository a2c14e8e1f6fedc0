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

## ui: the Dagster UI on http://127.0.0.1:3000 (lineage, checks, launchpad, schedules)
ui: setup
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

validate: setup
	$(BIN)/dagster definitions validate -w workspace.yaml

lint: setup
	$(BIN)/ruff check .

## bench: every scale / speed figure of issue 6 in one table (BENCH_ARGS="--quick": N = 60, 500)
bench: setup
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

## study: the real-data study on ../shared/data/real (STUDY_ARGS="--epochs 150 --out /tmp/s.json")
study: setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-2} $(BIN)/python benchmarks/real_data_study.py $(STUDY_ARGS)

## readme: rewrite README.md's result tables from benchmarks/results/*.json (README_ARGS=--check: diff, no write)
readme: setup
	$(BIN)/python scripts/readme_tables.py $(README_ARGS)

clean:
	rm -rf $(DAGSTER_HOME) data/*.duckdb data/*.duckdb.wal
