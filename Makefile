# One command runner for humans and CI. README.md and .ci/run use these targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# Test processes: many tests wait on a browser, a mail server or the database, so more than
# the cores pays off.
TEST_JOBS ?= 4

.PHONY: demo test setup system-deps lint format i18n bench clean

$(BIN)/kefu: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/kefu

setup: $(BIN)/kefu

## demo: set up, fill a SQLite database with demo data and serve it
demo: setup
	$(BIN)/kefu demo
	@echo
	@echo "Open http://$(HOST):$(PORT)/ and sign in as admin / kefu-demo-2026"
	$(BIN)/kefu serve --host $(HOST) --port $(PORT)

## system-deps: Debian packages the tests need (chromium and a Chinese font for the browser
## tests; dovecot, the real IMAP server the mail tests start on 127.0.0.1)
system-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/sbin/dovecot ] || ! fc-list 2>/dev/null | grep -qi 'wenquanyi\|noto sans cjk'; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get install -y -q chromium fonts-wqy-microhei dovecot-imapd >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q chromium fonts-wqy-microhei dovecot-imapd >/dev/null; }; \
	fi

## test: set up and run the whole suite (also on PostgreSQL when KEFU_TEST_DATABASE_URL is set)
test: setup system-deps
	@rc=0; $(BIN)/pytest -n $(TEST_JOBS) $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a failure here" >&2; exit 1; fi; \
	exit $$rc

lint: setup
	$(BIN)/ruff check src tests migrations benchmarks
	$(BIN)/ruff format --check src tests migrations benchmarks
	$(BIN)/mypy src

format: setup
	$(BIN)/ruff format src tests migrations benchmarks
	$(BIN)/ruff check --fix src tests migrations benchmarks

## i18n: extract messages into the .po catalogues (then translate zh_CN)
i18n: setup
	$(BIN)/python -m kefu.i18n.catalogue

## bench: every benchmark, one JSON list (figures go into docs/performance.md)
bench: setup
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache .ruff_cache
