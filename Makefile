# 五网同构 command console. Two commands set everything up from a fresh clone:
#   make demo   — the whole console on this machine (DEMO_MODE on); Ctrl-C stops it
#   make test   — the whole test-suite
# Both create .venv if it is missing and install the pinned dependencies (lock files)
# once; a stamp keyed on the lock files' hash makes later runs skip the install.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
# PY follows VENV: with PY overridden alone, the install stamp is looked for in ./.venv and the
# install would run into PY's venv, re-pointing its editable package at this checkout.
ifneq ($(PY),$(VENV)/bin/python)
$(error PY is $(PY) but VENV is $(VENV): run make VENV=<that venv> instead of PY=…)
endif
UV_VERSION := 0.13.8
DEMO_ARGS ?=
PYTEST_ARGS ?=
# Two pytest workers (pytest-xdist): most of the suite waits on real services, so two share
# two cores well. The browser files go whole to one worker, one at a time on its console
# stack, every other test on its own to the other (tests/conftest.py,
# testkit/xdist_order.py). TEST_WORKERS=0 runs in one process. The 30 slowest set-ups,
# calls and teardowns are listed at the end of every run (CI's log says where the time goes).
TEST_WORKERS ?= 2

# Stamps: one per set of lock files, named by their hash.
RUNTIME_HASH := $(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
DEV_HASH := $(shell cat requirements.lock requirements-dev.lock pyproject.toml | sha256sum | cut -c1-16)
RUNTIME_STAMP := $(VENV)/.installed-runtime-$(RUNTIME_HASH)
DEV_STAMP := $(VENV)/.installed-dev-$(DEV_HASH)

# Packages type-checked by `make lint` (those that exist yet; testkit/ is the tests' harness).
PACKAGES := $(patsubst %/__init__.py,%,$(wildcard wuwang/__init__.py ingest/__init__.py \
	command/__init__.py dashboard/__init__.py simulators/__init__.py testkit/__init__.py))
# The tests and the benchmarks, type-checked as strictly as the packages.
TYPED_TESTS := bench tests

.PHONY: help demo test lint basemap install install-dev broker-check clean

help:
	@echo "make demo   run the console on this machine (DEMO_MODE on); Ctrl-C stops it"
	@echo "make test   run the whole test-suite"
	@echo "make lint   ruff + mypy + the import contracts (lint-imports)"
	@echo "make basemap  (re)draw the demo's offline map tiles (.wuwang/basemap.mbtiles)"
	@echo "make clean  remove .venv and caches (keeps .wuwang/, the demo's data)"

# The offline basemap is drawn once (some 10–30 s) when it is missing; `make basemap` redraws it.
demo: $(RUNTIME_STAMP)
	$(PY) -m simulators.basemap build --if-missing
	$(PY) -m wuwang demo $(DEMO_ARGS)

basemap: $(RUNTIME_STAMP)
	$(PY) -m simulators.basemap build

test: $(DEV_STAMP) broker-check
	$(PY) -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist load) --durations=30 $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	@status=0; \
	echo "ruff check ."; $(PY) -m ruff check . || status=1; \
	echo "mypy $(PACKAGES) $(TYPED_TESTS)"; \
		$(PY) -m mypy --explicit-package-bases $(PACKAGES) $(TYPED_TESTS) || status=1; \
	echo "lint-imports (the import contracts, pyproject.toml)"; $(VENV)/bin/lint-imports --no-cache || status=1; \
	exit $$status

install: $(RUNTIME_STAMP)
install-dev: $(DEV_STAMP)

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else \
		"Python 3.11 or newer is needed, $(PYTHON) is " + sys.version.split()[0] + \
		": run make PYTHON=python3.11 ...")'
	$(PYTHON) -m venv $(VENV)

# install_locked FILES...: uv (pinned, bootstrapped with pip) when it works, pip otherwise.
define install_locked
	if { [ -x $(UV) ] && [ "$$($(UV) --version 2>/dev/null)" = "uv $(UV_VERSION)" ]; } \
		|| $(PY) -m pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"; then \
		UV_PYTHON_DOWNLOADS=never $(UV) pip install --python $(PY) $(foreach f,$(1),-r $(f)) \
		&& UV_PYTHON_DOWNLOADS=never $(UV) pip install --python $(PY) --no-deps -e . \
		|| { echo "uv failed; installing with pip instead"; \
		     $(PY) -m pip install --disable-pip-version-check $(foreach f,$(1),-r $(f)) \
		     && $(PY) -m pip install --disable-pip-version-check --no-deps -e .; }; \
	else \
		echo "could not bootstrap uv; installing with pip"; \
		$(PY) -m pip install --disable-pip-version-check $(foreach f,$(1),-r $(f)); \
		$(PY) -m pip install --disable-pip-version-check --no-deps -e .; \
	fi
endef

$(RUNTIME_STAMP): requirements.lock pyproject.toml | $(PY)
	@$(call install_locked,requirements.lock)
	@rm -f $(VENV)/.installed-runtime-*
	@touch $@

$(DEV_STAMP): requirements.lock requirements-dev.lock pyproject.toml | $(PY)
	@$(call install_locked,requirements.lock requirements-dev.lock)
	@rm -f $(VENV)/.installed-runtime-* $(VENV)/.installed-dev-*
	@touch $@ $(RUNTIME_STAMP)

# The broker tests need Debian's mosquitto. On a developer's machine nothing is
# installed behind their back: without the binary those tests are skipped, with a
# reason. Only in CI (CI=true, root, apt-get) is the package installed when missing.
broker-check:
	@if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then \
		true; \
	elif [ "$${CI:-}" = "true" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "CI: installing Debian's mosquitto for the broker tests"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
			mosquitto mosquitto-clients; } \
		|| echo "WARNING: could not install mosquitto; the broker tests will be skipped"; \
	else \
		echo "note: no mosquitto binary — tests that need the project's broker configuration are" \
			"skipped (apt-get install mosquitto to run them)"; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
