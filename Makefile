# The two commands: `make run` (sandbox server) and `make test` (whole suite).
# Both create .venv and install what is needed on first use.
# `make run PORT=9000 DB=sqlite:///./other/sandbox.db` picks the port and the database.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/stakehouse serve --sandbox $(if $(PORT),--port $(PORT)) $(if $(DB),--db $(DB))

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 -q

bench: $(STAMP)
	$(BIN)/python bench/balances.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
