# The two commands: `make run` (sandbox server) and `make test` (whole suite).
# Both create .venv and install what is needed on first use.
# `make run PORT=9000 DB=sqlite:///./other/sandbox.db` picks the port and the database.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean browser screenshots

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/stakehouse serve --sandbox $(if $(PORT),--port $(PORT)) $(if $(DB),--db $(DB))

# The browser tests drive Debian's Chromium; install it (as root, e.g. in CI) when it is missing.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
	  echo "no Chromium and no way to install it here: the browser tests will be skipped"

# Three pytest workers on CI's two cores: much of the suite waits on the servers it starts, PostgreSQL and
# Chromium, so a third worker fills the idle time (measured on 2 cores: 10:27 with -n 2, 8:37 with -n 3).
test: $(STAMP) browser
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 3 -q

# Re-make the screenshots of docs/web.md (the browser tests write them).
screenshots: $(STAMP) browser
	STAKEHOUSE_SCREENSHOTS=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests/web -k sqlite

bench: $(STAMP)
	$(BIN)/python bench/balances.py

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
