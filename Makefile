# One environment (.venv, Python 3.12) serves every command; it is (re)built when pyproject.toml changes,
# with uv (measured here: 36 s for the 6.7 GB of wheels from a cold cache, where pip took about 4 min),
# compiling the bytecode at install as pip does: otherwise every process the tests start (Ray workers,
# the NDIF services) compiles torch's modules again on its first import (a CI run took 6 min longer).
PY312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12 2>/dev/null))
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: test lint docs demo bench clean system-packages

$(STAMP): pyproject.toml
	@test -n "$(PY312)" || { echo "Python 3.12 not found: install it (pyenv install 3.12) or set PY312=/path/to/python3.12"; exit 2; }
	$(PY312) -m venv $(VENV)
	$(VENV)/bin/pip install -q uv
	$(VENV)/bin/uv pip install --python $(VENV)/bin/python -q --compile-bytecode -e '.[trace,test,capability,remote,cluster,docs]'
	touch $(STAMP)

# The Debian packages the tests need (WordNet, Chromium, redis, a JRE): installed as root, named otherwise.
system-packages:
	@bash .ci/system-packages

# The engines' tests (tests/test_backends.py: a real NDIF stack and Ray cluster) spend most of their
# time waiting for services to start and stop, so they run in a second pytest process beside the
# rest, which pytest-xdist spreads over one worker per core (whole files per worker: module
# fixtures are built once; two workers per core were no faster: 19.3 min against 18.6); their
# output follows the rest's, and either failing fails the target. Every process computes on one thread: several processes whose torch threads
# spin-wait for each other's cores doubled the CPU time of a CI run (41 min of CPU against 21).
TEST_ENV := OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
test: $(STAMP) system-packages
	@$(TEST_ENV) $(VENV)/bin/python -m pytest -q --durations=20 -p no:cacheprovider tests/test_backends.py > .engines.log 2>&1 & \
	engines=$$!; \
	$(TEST_ENV) $(VENV)/bin/python -m pytest -q --durations=20 -n auto --dist loadfile --ignore=tests/test_backends.py; rest=$$?; \
	wait $$engines; status=$$?; echo "--- tests/test_backends.py (run beside the rest) ---"; cat .engines.log; \
	rm -f .engines.log; echo "pytest exit codes: the rest $$rest, tests/test_backends.py $$status"; \
	exit $$(( rest || status ))

# The manual, strictly: any warning (a broken link or reference, a tutorial that fails) fails the build.
docs: $(STAMP)
	$(VENV)/bin/sphinx-build -q -W --keep-going -n -b html docs docs/_build/html
	@echo "open docs/_build/html/index.html"

# The layers contract in pyproject.toml ([tool.importlinter]).
lint: $(STAMP)
	$(VENV)/bin/lint-imports --no-logo

demo: $(STAMP)
	$(VENV)/bin/anchors demo

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/run.py
	$(VENV)/bin/python benchmarks/atp_accuracy.py
	$(VENV)/bin/python benchmarks/cli_startup.py
	$(VENV)/bin/python benchmarks/dry_run.py
	$(VENV)/bin/python benchmarks/remote_sweeps.py
	$(VENV)/bin/python benchmarks/explorer_load.py

clean:
	rm -rf $(VENV) runs .pytest_cache docs/_build docs/jupyter_execute
