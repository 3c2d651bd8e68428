# `make test` is the one command CI runs: from a fresh clone it builds the virtualenv
# from the pinned requirements, then lints, type-checks and runs the tests.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test lint types unit venv clean

test: lint types unit

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: venv
	$(BIN)/pyright

unit: venv
	$(BIN)/pytest

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
