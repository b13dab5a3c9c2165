# Two entry points do all the set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check lint bench serve

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,load]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dropserver demo

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check dropserver tests loadtest bench
	$(BIN)/ruff format --check dropserver tests loadtest bench
	$(BIN)/mypy

check: lint test

serve: $(STAMP)
	$(BIN)/dropserver serve --config dropserver.example.toml
