# One environment (.venv, Python 3.12) serves every command; it is (re)built when pyproject.toml changes.
PY312 ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.12*/bin/python3.12) $(shell command -v python3.12 2>/dev/null))
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: test lint demo bench clean system-packages

$(STAMP): pyproject.toml
	@test -n "$(PY312)" || { echo "Python 3.12 not found: install it (pyenv install 3.12) or set PY312=/path/to/python3.12"; exit 2; }
	$(PY312) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,capability,remote,cluster]'
	touch $(STAMP)

# The Debian packages the tests need (WordNet, Chromium, redis, a JRE): installed as root, named otherwise.
system-packages:
	@bash .ci/system-packages

test: $(STAMP) system-packages
	$(VENV)/bin/python -m pytest -q --durations=10

# The layers contract in pyproject.toml ([tool.importlinter]).
lint: $(STAMP)
	$(VENV)/bin/lint-imports --no-logo

demo: $(STAMP)
	$(VENV)/bin/anchors demo

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/run.py
	$(VENV)/bin/python benchmarks/atp_accuracy.py
	$(VENV)/bin/python benchmarks/cli_startup.py

clean:
	rm -rf $(VENV) runs .pytest_cache
