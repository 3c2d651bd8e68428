# `make test` is the one command CI runs: from a fresh clone it builds the virtualenv
# from the pinned requirements, then lints, type-checks and runs the tests.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test lint types unit venv clean policy-venv policy-types policy-test workflows

test: lint types unit policy-types policy-test workflows

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

# The policy pack's own virtualenv: pulumi-policy pins protobuf 5, the dev venv has 6.
# It also carries the program's pins, so policy tests run the program under mocks.
POLICY_VENV := .venv-policy
POLICY_BIN := $(POLICY_VENV)/bin

policy-venv: $(POLICY_VENV)/.installed

$(POLICY_VENV)/.installed: requirements.txt policy/requirements.txt policy/requirements-dev.txt
	$(PYTHON) -m venv $(POLICY_VENV)
	$(POLICY_BIN)/pip install --quiet --disable-pip-version-check -r policy/requirements-dev.txt
	touch $@

# pyright comes from the dev venv; policy/pyrightconfig.json points it at the policy venv.
policy-types: venv policy-venv
	$(BIN)/pyright -p policy

policy-test: policy-venv
	cd policy && ../$(POLICY_BIN)/pytest

# GitHub workflow files against the schema check-jsonschema ships (no network).
workflows: venv
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

clean:
	rm -rf $(VENV) $(POLICY_VENV) .pytest_cache .ruff_cache
