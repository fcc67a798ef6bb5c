# LLM Caller: every command creates or reuses the virtualenv in .venv itself.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: help venv demo test run up down status lint schema bench uat clean

help:
	@echo "make demo    whole stack against bundled emulators, a real MCP client calls every tool"
	@echo "make test    the whole test suite (CI runs this)"
	@echo "make run     the stack in the foreground with config/ and real providers"
	@echo "make up / make down / make status    the same stack in the background"
	@echo "make lint    ruff and mypy"
	@echo "make bench   side-by-side benchmark (not part of make test)"
	@echo "make uat     end-to-end scenarios with two independent MCP clients"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test,bench]"
	@touch $(STAMP)

venv: $(STAMP)

demo: venv
	$(PY) -m cli.main demo

test: venv
	$(PY) -m pytest

run: venv
	$(PY) -m cli.main run

up: venv
	$(PY) -m cli.main up --detach

down: venv
	$(PY) -m cli.main down

status: venv
	$(PY) -m cli.main status

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

bench: venv
	$(PY) -m bench

uat: venv
	$(PY) uat/run_uat.py

schema: venv
	$(PY) -m cli.main config schema

clean:
	rm -rf $(VENV) run *.egg-info .pytest_cache .mypy_cache .ruff_cache
