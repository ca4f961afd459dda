# The two commands of the README: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SOURCE ?= https://github.com/datarevenue-berlin/code-challenge-2019/releases/download/0.1.0/dataset_sampled.csv
DATA_ROOT ?= data_root
VERSION ?= 0.1

.PHONY: run test test-fast lint e2e images clean

# The venv is rebuilt when the pins or the package metadata change.
$(STAMP): requirements.lock pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' 
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[report,orchestrate,cluster,dev]"
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/wine-pipeline run --source "$(SOURCE)" --data-root "$(DATA_ROOT)"

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) lint
	$(BIN)/python -m pytest

# The fast tier (about a minute): no cluster, CLI subprocess, luigi, browser or Docker.
test-fast: $(STAMP) lint
	$(BIN)/python -m pytest -m "not slow"

# The Docker way, end to end: build the images, compose up with two workers,
# run the whole DAG in containers, tear down.
E2E_TIMEOUT ?= 2700
e2e: $(STAMP)
	WINE_REQUIRE_DOCKER=1 WINE_VERSION=$(VERSION) timeout $(E2E_TIMEOUT) \
	  $(BIN)/python -m pytest -m "docker and slow" -s tests/test_e2e_docker.py tests/test_e2e_object_store.py

images:
	./build-task-images.sh $(VERSION)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
