# Two commands work on a fresh machine with only Python 3.11 and root:
#   make demo   the platform end to end on an embedded local Ray
#   make test   the test suite
# Both create/refresh .venv and install what they need (system packages via apt-get only when
# missing).

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.spark-ray-installed
# apt packages the tests and demo need, installed only when missing: prometheus (the real
# Prometheus and promtool), openssh-server and rsync (the `ray up` test's SSH node and Ray's
# file-mount sync), chromium (the console's browser tests, driven by Playwright) and
# prometheus-alertmanager (alerts routed to the console).
APT_PACKAGES ?= prometheus openssh-server rsync chromium prometheus-alertmanager
PYTEST_ARGS ?=
# Two pytest workers, a test file at a time: a module's fixtures (a Prometheus scenario, a
# three-node cluster) start once and its tests run in order. (xdist 3.8's loadgroup does not
# group under pytest 9.2: pytest-xdist#1386.) PYTEST_WORKERS=0 runs everything in one process.
PYTEST_WORKERS ?= 2

.PHONY: venv sysdeps demo test lint bench chaos clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "spark-ray needs Python >= 3.11, found " + sys.version.split()[0])'
	@if ! $(PYTHON) -m venv --help >/dev/null 2>&1 || ! $(PYTHON) -c 'import ensurepip' 2>/dev/null; then \
		echo "installing python3-venv"; apt-get update -qq && apt-get install -y -qq python3-venv; fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

venv: $(STAMP)

sysdeps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "apt-get install$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

demo: venv sysdeps
	$(BIN)/spark-ray demo

# Tests that hold a latency SLO (marker "alone": the platform under its own load, the demo's
# observe stage) run after the parallel phase, one at a time: on 2 cores a second pytest worker
# is load the platform would not have. Exit 5 (nothing selected, e.g. PYTEST_ARGS picks one
# file) counts as success for either phase.
test: venv sysdeps
	@$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=20 -m "not alone" $(PYTEST_ARGS); a=$$?; \
	$(BIN)/pytest -m alone --durations=5 $(PYTEST_ARGS); b=$$?; \
	[ $$a -eq 5 ] && a=0; [ $$b -eq 5 ] && b=0; \
	if [ $$a -ne 0 ]; then exit $$a; fi; exit $$b

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy

# Peers measured side by side in the same run; installed for the benchmarks only.
BENCH_PEERS ?= backtrader vectorbt

# The nightly chaos canary: every experiment against venue, fabric, executor and a real
# Prometheus; evidence under runs/, exit 1 if any experiment fails.
chaos: venv sysdeps
	$(BIN)/spark-ray chaos run --out runs

bench: venv sysdeps
	$(BIN)/python -m pip install --quiet --disable-pip-version-check $(BENCH_PEERS)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
