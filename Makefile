# The two set-up commands of the README: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# the same home `bitdust` uses by default, so a second shell needs no options
HOME_DIR ?= $(or $(BITDUST_HOME),$(HOME)/.bitdust)
TESTS ?= tests

.PHONY: venv run test lint clean

$(BIN)/bitdust: setup.cfg setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	touch $@

venv: $(BIN)/bitdust

# a one-node private network: genesis DHT, identity server and REST API, in the foreground
run: venv
	$(BIN)/bitdust --config $(HOME_DIR) init --profile local-network --if-new
	$(BIN)/bitdust-node --nodaemon --pidfile= --config $(HOME_DIR)

test: venv
	set -o pipefail; $(BIN)/trial $(TESTS) 2>&1 | $(BIN)/python .ci/trial_summary.py

lint: venv
	$(BIN)/ruff check bitdust_node tests
	$(BIN)/mypy bitdust_node

clean:
	rm -rf $(VENV) _trial_temp*
