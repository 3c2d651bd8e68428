# `make test` is the one command CI runs: from a fresh clone it builds every virtualenv
# from pinned requirements, then lints, type-checks and runs every test suite.
PYTHON ?= python3.11
STACK ?= dev
PIP_INSTALL = bin/pip install --quiet --disable-pip-version-check -r

# Three virtualenvs, because their protobuf pins can't meet:
#   .venv           the Pulumi program (requirements.txt), checkers, client, handler (protobuf 6)
#   .venv-policy    the policy pack: pulumi-policy pins protobuf 5; also the program's pins,
#                   so policy tests run the program under mocks
#   .venv-emulator  gcloud-tasks-emulator 0.6.2 pins protobuf < 5
VENV := .venv
POLICY_VENV := .venv-policy
EMULATOR_VENV := .venv-emulator
BIN := $(VENV)/bin

.PHONY: test lint types unit policy-types policy-test workflows \
	venv policy-venv emulator-venv local plan bench-enqueue bench-scale clean

test: lint types unit policy-types policy-test workflows

# --- virtualenvs ---------------------------------------------------------------
venv: $(VENV)/.installed
policy-venv: $(POLICY_VENV)/.installed
emulator-venv: $(EMULATOR_VENV)/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/$(PIP_INSTALL) requirements-dev.txt
	touch $@

$(POLICY_VENV)/.installed: requirements.txt policy/requirements.txt policy/requirements-dev.txt
	$(PYTHON) -m venv $(POLICY_VENV)
	$(POLICY_VENV)/$(PIP_INSTALL) policy/requirements-dev.txt
	touch $@

$(EMULATOR_VENV)/.installed: local/requirements-emulator.txt
	$(PYTHON) -m venv $(EMULATOR_VENV)
	$(EMULATOR_VENV)/$(PIP_INSTALL) local/requirements-emulator.txt
	touch $@

# --- checks ----------------------------------------------------------------------
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# pyright runs from .venv; policy/ and local/emulator/ have pyrightconfig.json files
# pointing it at their own virtualenvs.
types: venv emulator-venv
	$(BIN)/pyright
	$(BIN)/pyright -p local/emulator

policy-types: venv policy-venv
	$(BIN)/pyright -p policy

# The main suite: program under mocks, plan, bootstrap, workflows, client and handler
# (the integration tests start the emulator and handler on loopback).
unit: venv emulator-venv
	$(BIN)/pytest

policy-test: policy-venv
	cd policy && ../$(POLICY_VENV)/bin/pytest

# GitHub workflow files against the schema check-jsonschema ships (no network).
workflows: venv
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

# --- working with a stack offline ---------------------------------------------------
# What Pulumi.$(STACK).yaml would create, computed under mocks (no cloud, no CLI).
# FORMAT=text|json|mermaid|markdown; BASE=plan.json (a FORMAT=json plan) adds what changed.
# Silent recipe: the output is the plan alone, fit for redirecting to a file.
FORMAT ?= text
plan: venv
	@$(BIN)/python -m plan --stack $(STACK) --format $(FORMAT) $(if $(BASE),--diff $(BASE))

# The whole loop on loopback: emulator + handler, one queue per pipeline of Pulumi.$(STACK).yaml.
# State (logs, outputs, run.json) in $(LOCAL_STATE)/$(STACK)/: one directory per stack.
LOCAL_STATE ?= build/local
local: venv emulator-venv
	$(BIN)/python -m local --stack $(STACK) --state $(LOCAL_STATE)

# --- benchmarks (figures and ratios, not tests) ------------------------------------
# Bulk enqueue against one call per task, on the emulator, without and with a simulated RTT.
bench-enqueue: venv emulator-venv
	$(BIN)/python -m bench.enqueue

# The program under mocks at 1/10/50/100 pipelines against a plain program.
bench-scale: venv
	$(BIN)/python -m bench.scale

clean:
	rm -rf $(VENV) $(POLICY_VENV) $(EMULATOR_VENV) build/local .pytest_cache .ruff_cache
