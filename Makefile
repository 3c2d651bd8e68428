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

unit: venv emulator-venv
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

# The Cloud Tasks emulator's own virtualenv: gcloud-tasks-emulator 0.6.2 pins protobuf < 5,
# which google-cloud-tasks 2.26 in the dev venv cannot share.
EMULATOR_VENV := .venv-emulator

.PHONY: emulator-venv emulator-types local bench-enqueue clean-local

emulator-venv: $(EMULATOR_VENV)/.installed

$(EMULATOR_VENV)/.installed: local/requirements-emulator.txt
	$(PYTHON) -m venv $(EMULATOR_VENV)
	$(EMULATOR_VENV)/bin/pip install --quiet --disable-pip-version-check -r local/requirements-emulator.txt
	touch $@

# The emulator wrapper runs in that venv: local/emulator/pyrightconfig.json points pyright there.
types: emulator-types
emulator-types: venv emulator-venv
	$(BIN)/pyright -p local/emulator

# The whole loop on loopback: emulator + handler, one queue per pipeline of Pulumi.$(STACK).yaml.
STACK ?= dev
local: venv emulator-venv
	$(BIN)/python -m local --stack $(STACK)

# Bulk enqueue against one call per task, on the emulator, without and with a simulated RTT.
bench-enqueue: venv emulator-venv
	$(BIN)/python -m bench.enqueue

clean: clean-local
clean-local:
	rm -rf $(EMULATOR_VENV) build/local

# What Pulumi.$(STACK).yaml would create, computed offline under mocks (no cloud, no CLI).
# FORMAT=text|json|mermaid|markdown; BASE=plan.json (a FORMAT=json plan) adds what changed.
# Silent recipe: the output is the plan alone, fit for redirecting to a file.
.PHONY: plan
FORMAT ?= text
plan: venv
	@$(BIN)/python -m plan --stack $(STACK) --format $(FORMAT) $(if $(BASE),--diff $(BASE))

# Plan time at 1/10/50/100 pipelines, real program vs bench/plain (same resources, flat).
.PHONY: bench-scale
bench-scale: venv
	$(BIN)/python -m bench.scale
