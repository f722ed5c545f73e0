# Tailor: `make run` serves on SQLite, `make test` runs every test (SQLite and PostgreSQL).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
WORKERS ?= 4
THREADS ?= 2
# DATABASE_URL (environment or `make run DATABASE_URL=...`) reaches `tailor`; unset, it
# uses var/tailor.db in this checkout (README, Configuration).
ifdef DATABASE_URL
export DATABASE_URL
endif

.PHONY: run test test-faults lint bench install clean

# Runtime packages for `make run`; the dev extras (test tools) only for `make test`.
$(VENV)/.installed-run: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed-run
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed-dev

# What an installed Tailor does: `tailor init`, then `tailor serve` (gunicorn and the
# learner; Ctrl-C stops both).
run: $(VENV)/.installed-run
	$(BIN)/tailor init
	$(BIN)/tailor serve --port $(PORT) --workers $(WORKERS) --threads $(THREADS)

# Two pytest-xdist workers (CI has 2 cores), each with its own PostgreSQL database and
# temporary files; a file's tests stay together (module fixtures: the wheel, the servers),
# files in collection order (e2e first: xdist would put the long 2-test files last).
test: install
	$(BIN)/pytest -q -p no:cacheprovider -n 2 --dist loadfile --no-loadscope-reorder

# Faults under load: kill -9 workers and restart PostgreSQL (docs/bench-faults.md). It
# restarts the shared PostgreSQL server: never run it while other test runs use it.
test-faults: install
	TAILOR_FAULTS_FULL=1 $(BIN)/pytest -q -p no:cacheprovider tests/faults

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var *.egg-info
