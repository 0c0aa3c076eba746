# Two commands for a newcomer: `make demo` (the main job) and `make test` (the CI test tier; `make test-all`: every test).
# Each creates .venv and installs the project first (pip takes torch/torchvision from this disk).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

export DAGSTER_HOME ?= $(CURDIR)/dagster_home
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install demo lint test test-all ui mlflow-ui bench clean-data

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/vpr demo

lint: $(STAMP)
	$(BIN)/ruff check .

# CI's tier: everything not marked `slow` (about 7 minutes on 2 cores)
test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# every test, the slow end-to-end ones included (about 25 minutes on 2 cores; .ci/run-full)
test-all: $(STAMP)
	$(BIN)/python -m pytest -q

ui: $(STAMP)
	$(BIN)/dagster dev -w workspace.yaml

mlflow-ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$${VPR_HOME:-$(CURDIR)/vpr_data}/mlflow.db

clean-data:
	rm -rf vpr_data
	find dagster_home -mindepth 1 ! -name dagster.yaml -exec rm -rf {} +
