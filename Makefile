# Developer entry points. `make run` and `make test` work on a fresh machine with
# Python 3.11+; the virtual environment is created on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint format bench clean

$(BIN)/ptdir: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $@

## run: start the API on the embedded SQLite database with synthetic demo data
run: $(BIN)/ptdir
	PTDIR_LOG_FORMAT=$${PTDIR_LOG_FORMAT:-text} $(BIN)/ptdir serve --demo

## test: the whole suite (adds the PostgreSQL tier when PTDIR_TEST_POSTGRES_URL is set)
test: $(BIN)/ptdir
	$(BIN)/python -m pytest

lint: $(BIN)/ptdir
	$(BIN)/ruff check app tests migrations bench
	$(BIN)/ruff format --check app tests migrations bench
	$(BIN)/mypy app
	$(BIN)/hadolint Dockerfile

format: $(BIN)/ptdir
	$(BIN)/ruff check --fix app tests migrations bench
	$(BIN)/ruff format app tests migrations bench

bench: $(BIN)/ptdir
	$(BIN)/python bench/crud.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
