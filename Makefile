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

.PHONY: venv sysdeps demo test lint audit bench chaos clean

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

# bandit: the code that ships (mypy's files too), every severity; its config is [tool.bandit] in
# pyproject.toml, each accepted finding a `# nosec BXXX  # reason` on its own line.
BANDIT_TARGETS ?= spark_ray actors tune chaos

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/bandit -c pyproject.toml -q -r $(BANDIT_TARGETS)

# Known vulnerabilities in what .venv has installed (all but spark-ray itself, editable), from
# pip-audit's source: PyPI's per-release JSON (AUDIT_SERVICE=pypi, its "vulnerabilities" field)
# or OSV's API (AUDIT_SERVICE=osv). --strict: a dependency the source could not look up fails
# the audit (by default pip-audit skips it and still says "No known vulnerabilities found").
# The probe first tells an unreachable source apart from a finding.
AUDIT_SERVICE ?= pypi
AUDIT_REQS := $(VENV)/audit-requirements.txt
define AUDIT_PROBE
import json, sys, urllib.request
from importlib.metadata import version
service, pip = sys.argv[1], version("pip")
if service == "osv":
    url = "https://api.osv.dev/v1/query"
    body = {"package": {"name": "pip", "ecosystem": "PyPI"}, "version": pip}
    req = urllib.request.Request(url, json.dumps(body).encode(), method="POST")
else:
    url = f"https://pypi.org/pypi/pip/{pip}/json"
    req = urllib.request.Request(url)
try:
    with urllib.request.urlopen(req, timeout=20) as r:
        data = json.load(r)
    if service != "osv" and "vulnerabilities" not in data:
        raise ValueError("the answer has no 'vulnerabilities' field")
except Exception as e:
    sys.exit(f"make audit: pip-audit's vulnerability source ({service}: {url}) is not reachable "
             f"from this machine ({e}); nothing was audited. AUDIT_SERVICE=pypi|osv picks the "
             "source.")
endef
export AUDIT_PROBE

audit: venv
	@$(BIN)/python -c "$$AUDIT_PROBE" $(AUDIT_SERVICE)
	@$(BIN)/python -m pip freeze --all --exclude-editable --disable-pip-version-check > $(AUDIT_REQS)
	$(BIN)/pip-audit --strict --disable-pip --no-deps --progress-spinner off \
		--vulnerability-service $(AUDIT_SERVICE) -r $(AUDIT_REQS)

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
