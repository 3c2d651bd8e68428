# `make test` is the one command CI runs: from a fresh clone it builds every virtualenv
# from hash-locked requirements, then lints, type-checks, audits the workflows, checks the
# locks against their inputs and runs every test suite: all side by side, each to its end
# even when another fails, then a summary naming every failure (exit 1 if any).
# `make check` is the edit loop's subset (lint, types, the tests that start no process).
PYTHON ?= python3.11
STACK ?= dev
# --require-hashes: every package must be in the lock with the hash of the very file pip
# downloads, from whichever index serves it. --no-deps: a lock is the whole tree
# (lock-check proves it is what pip-compile makes of its input), so pip installs exactly
# its lines and resolves nothing (the venvs' bundled pip 23 also rejects extras such as
# google-api-core[grpc] in hash mode); `pip check` then proves the tree complete.
PIP_INSTALL = bin/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r
PIP_CHECK = bin/pip check --disable-pip-version-check

# Virtualenv builds are silent on stdout (commands unechoed, output to stderr), so that
# `make plan FORMAT=json > plan.json` on a fresh clone writes the plan alone.
# Three virtualenvs, because their protobuf pins can't meet:
#   .venv           the Pulumi program (requirements.txt), checkers, client, handler (protobuf 6)
#                   from requirements-dev.txt
#   .venv-policy    the policy pack: pulumi-policy pins protobuf 5; also the program's pins,
#                   so policy tests run the program under mocks
#   .venv-emulator  gcloud-tasks-emulator 0.6.2 pins protobuf < 5
VENV := .venv
POLICY_VENV := .venv-policy
EMULATOR_VENV := .venv-emulator
BIN := $(VENV)/bin

.PHONY: test check flaky-check lint types unit unit-fast policy-types policy-test workflows \
	zizmor lock lock-upgrade lock-check venv policy-venv emulator-venv local plan wheel \
	bench-enqueue bench-scale bench-handler soak clean docs chromium mermaid mutation

# The checks `make test` runs, longest first. tests.checks runs them at once (each its own
# make, log in build/checks/) once the virtualenvs are built, so lock-check's wait on PyPI
# and the emulators' start-up overlap with the checks that need the CPU.
# The three virtualenvs build side by side first (downloads and unpacking, no shared file
# but pip's cache), with chromium and Mermaid (the site's browser test in `unit` and the
# `docs` build need them), so no check starts installing one while another uses it.
TEST_CHECKS := unit lock-check policy-test types policy-types docs lint workflows zizmor
test:
	@$(MAKE) --no-print-directory -j3 venv policy-venv emulator-venv chromium mermaid
	@$(BIN)/python -m tests.checks --make "$(MAKE)" $(TEST_CHECKS)

# The edit loop: lint, types, and the tests that start no process and are not marked slow.
check: venv emulator-venv
	@$(BIN)/python -m tests.checks --make "$(MAKE)" lint types unit-fast

# The main suite three times with a busy loop on every core: a test that fails here and not
# on an idle machine depends on timing (a defect). The loops are always stopped.
# RUNS=N to change the count.
RUNS ?= 3
flaky-check: venv policy-venv emulator-venv
	$(BIN)/python -m tests.contention --runs $(RUNS) -- $(MAKE) --no-print-directory unit policy-test

# --- virtualenvs ---------------------------------------------------------------
venv: $(VENV)/.installed
policy-venv: $(POLICY_VENV)/.installed
emulator-venv: $(EMULATOR_VENV)/.installed

$(VENV)/.installed: requirements-dev.txt
	@echo "building $(VENV) from requirements-dev.txt" >&2
	@$(PYTHON) -m venv $(VENV) >&2
	@$(VENV)/$(PIP_INSTALL) requirements-dev.txt >&2
	@$(VENV)/$(PIP_CHECK) >&2
	@touch $@ >&2

$(POLICY_VENV)/.installed: policy/requirements-dev.txt
	@echo "building $(POLICY_VENV) from policy/requirements-dev.txt" >&2
	@$(PYTHON) -m venv $(POLICY_VENV) >&2
	@$(POLICY_VENV)/$(PIP_INSTALL) policy/requirements-dev.txt >&2
	@$(POLICY_VENV)/$(PIP_CHECK) >&2
	@touch $@ >&2

$(EMULATOR_VENV)/.installed: local/requirements-emulator.txt
	@echo "building $(EMULATOR_VENV) from local/requirements-emulator.txt" >&2
	@$(PYTHON) -m venv $(EMULATOR_VENV) >&2
	@$(EMULATOR_VENV)/$(PIP_INSTALL) local/requirements-emulator.txt >&2
	@$(EMULATOR_VENV)/$(PIP_CHECK) >&2
	@touch $@ >&2

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
# (the integration tests start the emulator and handler on loopback). On pytest-xdist
# workers, more than the cores: most of the suite's time is spent waiting on processes it
# started. Each worker is its own session with its own emulators on their own ports; tests
# sharing a module's or a session's costly fixture go to one worker (tests/conftest.py).
# WORKERS=N to change the count (WORKERS=0: in this process, no workers).
WORKERS ?= 4
PYTEST_PARALLEL = -n $(WORKERS) --dist loadgroup
unit: venv emulator-venv
	$(BIN)/pytest $(PYTEST_PARALLEL) --durations=10

# The tests that start no process (no emulator, handler, CLI or JVM) and are not marked
# slow: `make check`'s.
unit-fast: venv
	$(BIN)/pytest $(PYTEST_PARALLEL) -m "not processes and not slow"

# Mutation testing: mutmut ([tool.mutmut] in pyproject.toml) mutates handler/, the bulk
# client, the task builder and the settings models in a copy (mutants/), runs the fast tests
# that reach each mutated function, then tests/mutation.py prints each module's score and
# fails one under 90% with a survivor tests/mutation_accepted.toml does not list. Results
# are kept in mutants/: a kill is reused while its function is unchanged, every other
# mutant is tested again. mutmut runs through tests/mutmut_run.py, which sends a mutant's
# timeout to that mutant only (mutmut 3.8.1 signals its pid even after it was reused).
# Not part of `make test`.
mutation: venv
	$(BIN)/python -m tests.mutation --recheck
	$(BIN)/python -m tests.mutmut_run run --max-children 2
	$(BIN)/python -m tests.mutation

policy-test: policy-venv
	cd policy && ../$(POLICY_VENV)/bin/pytest

# GitHub workflow files and dependabot.yml against the schemas check-jsonschema ships
# (no network).
workflows: venv
	$(BIN)/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(BIN)/check-jsonschema --builtin-schema vendor.dependabot .github/dependabot.yml

# Static audit of the workflows and dependabot.yml (unpinned actions, injection, credential
# persistence, excessive permissions...). --offline: no GitHub API calls. Any finding of
# medium severity or above fails; suppressions are inline comments with their reason.
zizmor: venv
	$(BIN)/zizmor --offline --min-severity medium .

# --- locks: hand-edited *.in compiled by pip-tools into hash-locked *.txt ---------------
# In this order: requirements-dev.in is constrained by requirements.txt, and
# policy/requirements-dev.in by policy/requirements.txt.
LOCKS := requirements.txt requirements-dev.txt policy/requirements.txt \
	policy/requirements-dev.txt handler/requirements.txt local/requirements-emulator.txt
# PyPI alone, whatever pip configuration this machine has (extra indexes, find-links,
# constraints), so every machine and Dependabot compile the same files. Compiled for
# the interpreter that runs pip-compile: .venv's, which is $(PYTHON) (3.11) on Linux.
LOCK_ENV := env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL -u PIP_CONSTRAINT \
	PIP_CONFIG_FILE=/dev/null
PIP_COMPILE = $(LOCK_ENV) $(CURDIR)/$(BIN)/pip-compile --quiet --generate-hashes \
	--allow-unsafe --strip-extras --no-emit-index-url --no-reuse-hashes
LOCK_CHECK_DIR := build/lock-check

# After editing a *.in: recompile every lock, keeping each package's current pin where the
# inputs allow it. lock-upgrade moves every package to its newest release allowed.
lock lock-upgrade: venv
	$(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11) and sys.platform == "linux", "locks target python 3.11 on linux"'
	set -e; for lock in $(LOCKS); do \
		$(PIP_COMPILE) $(if $(filter lock-upgrade,$@),--upgrade) --output-file=$$lock $${lock%.txt}.in; \
	done

# Each lock recompiled from its input in a scratch copy (the current pins as preferences,
# exactly as `make lock` does) and compared: any difference means a *.txt is out of date
# with its *.in or was edited by hand. --no-reuse-hashes: every hash is read from PyPI
# again, never trusted from the file being checked, so a removed or altered hash fails
# too. The six compile at once (each its own dependency cache in build/lock-cache), as
# most of the time is spent waiting on PyPI. Needs PyPI, nothing else.
lock-check: venv
	$(BIN)/python -c 'import sys; assert sys.version_info[:2] == (3, 11) and sys.platform == "linux", "locks target python 3.11 on linux"'
	rm -rf $(LOCK_CHECK_DIR)
	mkdir -p $(LOCK_CHECK_DIR)
	cp --parents $(LOCKS) $(LOCKS:.txt=.in) $(LOCK_CHECK_DIR)/
	set -e; cd $(LOCK_CHECK_DIR); pids=; for lock in $(LOCKS); do \
		$(PIP_COMPILE) --cache-dir=$(CURDIR)/build/lock-cache/$$lock --output-file=$$lock $${lock%.txt}.in & \
		pids="$$pids $$!"; \
	done; for pid in $$pids; do wait $$pid; done
	set -e; for lock in $(LOCKS); do \
		diff -u $$lock $(LOCK_CHECK_DIR)/$$lock \
			|| { echo "$$lock is out of date with $${lock%.txt}.in: run make lock"; exit 1; }; \
	done
	@echo "locks up to date: $(LOCKS)"

# --- working with a stack offline ---------------------------------------------------
# What Pulumi.$(STACK).yaml would create, computed under mocks (no cloud, no CLI).
# FORMAT=text|json|mermaid|markdown; BASE=plan.json (a FORMAT=json plan) adds what changed.
# The policy pack runs on the plan (in .venv-policy) and a mandatory violation fails it;
# POLICY=report shows violations without failing, POLICY=off skips the pack.
# Silent recipe: the output is the plan alone, fit for redirecting to a file.
FORMAT ?= text
POLICY ?= enforce
plan: venv policy-venv
	@$(BIN)/python -m plan --stack $(STACK) --format $(FORMAT) --policy $(POLICY) $(if $(BASE),--diff $(BASE))

# The whole loop on loopback: emulator + handler, one queue per pipeline of Pulumi.$(STACK).yaml.
# State (logs, outputs, run.json) in $(LOCAL_STATE)/$(STACK)/: one directory per stack.
# Schedules fire at their cron times; TICK=PIPELINE.SCHEDULE also fires one at start.
LOCAL_STATE ?= build/local
local: venv emulator-venv
	$(BIN)/python -m local --stack $(STACK) --state $(LOCAL_STATE) $(if $(TICK),--tick-now $(TICK))

# --- documentation ----------------------------------------------------------------
# The site (MkDocs + Material, mkdocs.yml) in build/site, built strictly: a broken link, a
# missing page or any warning fails. The configuration reference is generated from the
# settings models at build time, the API reference from the code (mkdocstrings).
docs: venv chromium mermaid
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --quiet

# Mermaid for the site's diagrams, served with it (no CDN): npm ci from the lock, integrity
# hashes checked, no install scripts run.
MERMAID := docs/mermaid/node_modules/.package-lock.json
mermaid: $(MERMAID)
$(MERMAID): docs/mermaid/package-lock.json
	npm ci --prefix docs/mermaid --ignore-scripts --no-audit --no-fund --silent >&2

# Debian's chromium and its chromedriver, for the site's browser test
# (tests/docs/test_site.py): installed when missing (as root here and in CI; through sudo
# for anyone else). CHROMIUM and CHROMEDRIVER name another matching pair where one is
# installed already (the GitHub workflows pass the runner image's Google Chrome).
AS_ROOT := $(if $(filter 0,$(shell id -u)),,sudo)
CHROMIUM ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver
export CHROMIUM CHROMEDRIVER
chromium:
	@test -x $(CHROMIUM) -a -x $(CHROMEDRIVER) \
		|| ($(AS_ROOT) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(AS_ROOT) \
			apt-get install -y -qq --no-install-recommends chromium chromium-driver) >&2

# --- the package ------------------------------------------------------------------
# The cloudrun-tasks wheel (components/ as cloudrun_tasks, version from the git tag) in
# build/dist/, built with .venv's locked setuptools and setuptools-scm: nothing downloaded.
wheel: venv
	$(BIN)/pip wheel --quiet --no-deps --no-build-isolation --wheel-dir build/dist .

# --- benchmarks (figures and ratios, not tests) ------------------------------------
# Bulk enqueue against one call per task, on the emulator, without and with a simulated RTT.
bench-enqueue: venv emulator-venv
	$(BIN)/python -m bench.enqueue

# One handler instance: 0.2 s I/O-bound tasks at 80 in flight, 80 threads against 8, in memory
# and with claims in the Firestore emulator (when gcloud is installed).
bench-handler: venv
	$(BIN)/python -m bench.handler

# Three handlers on Google's Firestore and Pub/Sub emulators, 5,000 tasks each delivered three
# times at once, SIGKILLs, Firestore frozen now and then, Pub/Sub down once: exits 1 on any
# lost or doubled task. Not part of `make test` (about four minutes; needs gcloud and java).
# SOAK_ARGS="--contention": a busy loop on every core for the run (python -m soak --help).
SOAK_ARGS ?=
soak: venv
	$(BIN)/python -m soak $(SOAK_ARGS)

# The program under mocks at 1/10/50/100 pipelines against a plain program.
bench-scale: venv
	$(BIN)/python -m bench.scale

clean:
	rm -rf $(VENV) $(POLICY_VENV) $(EMULATOR_VENV) build/local $(LOCK_CHECK_DIR) build/lock-cache \
		build/checks build/contention build/site docs/mermaid/node_modules .pytest_cache .ruff_cache \
		mutants
