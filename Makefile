# Tailor: `make run` serves on SQLite, `make test` runs every test (SQLite and PostgreSQL).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
WORKERS ?= 2
THREADS ?= 4
export DATABASE_URL ?= sqlite:///var/tailor.db

.PHONY: run test test-faults lint bench install clean

$(BIN)/tailor: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/tailor

install: $(BIN)/tailor

run: install
	$(BIN)/tailor init
	PORT=$(PORT) WORKERS=$(WORKERS) THREADS=$(THREADS) bash app/serve.sh

test: install
	$(BIN)/pytest -q -p no:cacheprovider

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var *.egg-info
