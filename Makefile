# Vigil: `make run` starts the whole system, `make test` runs the whole test suite.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

MONITOR_PORT ?= 8000

.PHONY: install run test lint clean

install: $(STAMP)

$(STAMP): requirements/base.txt requirements/dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "Vigil needs $(PYTHON) (Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements/dev.txt
	touch $@

run: install
	@mkdir -p var
	@echo ""
	@echo "  Vigil is starting. In a few seconds:"
	@echo "    Patients (live data):  http://127.0.0.1:$(MONITOR_PORT)/api/v1/patients"
	@echo "    Alerts (notifications): http://127.0.0.1:$(MONITOR_PORT)/api/v1/notifications"
	@echo "    Live updates (WebSocket): ws://127.0.0.1:$(MONITOR_PORT)/api/v1/ws"
	@echo "    OpenAPI UI:            http://127.0.0.1:$(MONITOR_PORT)/docs"
	@echo "    OpenAPI document:      http://127.0.0.1:$(MONITOR_PORT)/openapi.json"
	@echo "  Stop with Ctrl-C."
	@echo ""
	PATH="$(CURDIR)/$(BIN):$$PATH" MONITOR_PORT=$(MONITOR_PORT) $(BIN)/honcho start -f Procfile

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
