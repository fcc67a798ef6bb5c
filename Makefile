# LLM Caller: every command creates or reuses the virtualenv in .venv itself.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
# Pinned Node tools (MCP Inspector, conformance suite, markdownlint, cspell, and the Node 22
# they need) live in uat/node_modules; their bin folder goes first on PATH when they run.
NODE_BIN   := $(CURDIR)/uat/node_modules/.bin
NODE_STAMP := uat/node_modules/.installed-stamp
MD_FILES   := '**/*.md'
# Machine-written reports (benchmark output) are not documentation and change every run.
MD_IGNORE  := --ignore '**/node_modules/**' --ignore .venv --ignore 'bench/results/**'

.PHONY: help venv demo try test run up down status lint lint-docs schema bench uat node-tools clean

help:
	@echo "make demo    whole stack against bundled emulators, a real MCP client calls every tool"
	@echo "make try     the stack against the emulators, no keys: prints an endpoint, a token and client setups"
	@echo "make test    the whole test suite (CI runs this)"
	@echo "make run     the stack in the foreground with your config (llm-caller init) and real providers"
	@echo "make up / make down / make status    the same stack in the background"
	@echo "make lint    ruff, mypy, and lint-docs (markdownlint + cspell over every *.md)"
	@echo "make bench   side-by-side benchmark (not part of make test)"
	@echo "make uat     end-to-end scenarios with three independent MCP clients, plus MCP conformance"
	@echo "make node-tools   install the pinned Node tools into uat/node_modules (npm ci)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e ".[test,bench]"
	@touch $(STAMP)

venv: $(STAMP)

# npm ci installs exactly what uat/package-lock.json pins. --ignore-scripts: none of these
# tools needs an install script, so no third-party code runs at install time.
$(NODE_STAMP): uat/package.json uat/package-lock.json
	cd uat && npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error
	@touch $(NODE_STAMP)

node-tools: $(NODE_STAMP)

demo: venv
	$(PY) -m cli.main demo

# PORT=N picks the gateway port (default: a free one).
try: venv
	$(PY) -m cli.main try $(if $(PORT),--port $(PORT))

test: venv
	$(PY) -m pytest

# `init` first: it writes the starter config into the operator's config folder (see the README's
# "Where things live") when a file is missing and never touches an existing one.
run: venv
	$(PY) -m cli.main init
	$(PY) -m cli.main run

up: venv
	$(PY) -m cli.main init
	$(PY) -m cli.main up --detach

down: venv
	$(PY) -m cli.main down

status: venv
	$(PY) -m cli.main status

lint: venv lint-docs
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy examples

lint-docs: node-tools
	PATH="$(NODE_BIN):$$PATH" markdownlint --config .markdownlint.json $(MD_IGNORE) $(MD_FILES)
	PATH="$(NODE_BIN):$$PATH" cspell lint --no-progress --config cspell.json $(MD_FILES)

bench: venv
	$(PY) -m bench

uat: venv node-tools
	$(PY) uat/run_uat.py --sandbox --conformance --tasks

schema: venv
	$(PY) -m cli.main config schema

clean:
	rm -rf $(VENV) run *.egg-info .pytest_cache .mypy_cache .ruff_cache uat/node_modules
