# The two commands: `make demo` and `make test` (and `make bench`). Each installs whatever is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
RASA    := $(CURDIR)/$(VENV)/bin/rasa
BOT     := rasa-bot
MODEL   := $(BOT)/models/proactive.tar.gz
APP     := app
PORT    ?= 5005
APP_PORT ?= 3000
export RASA_TELEMETRY_ENABLED := false
export PYTHONWARNINGS := ignore
export NEXT_TELEMETRY_DISABLED := 1

BOT_TRAINING := $(BOT)/config.yml $(BOT)/domain.yml $(wildcard $(BOT)/data/*.yml)
APP_SOURCES  := $(shell find $(APP)/app $(APP)/components $(APP)/copilot $(APP)/lib $(APP)/scripts -type f) \
                $(APP)/next.config.mjs $(APP)/tsconfig.json $(APP)/package.json
APP_BUILD    := $(APP)/.next/BUILD_ID

REPLICAS ?= 2
# Test processes: the suite mostly waits on servers, so two keep a 2-core machine busy.
TEST_WORKERS ?= 2

.PHONY: help demo demo-cluster test check stories typecheck adopt bench venv model app chromium redis nginx wrk validate constraints clean

help:
	@echo "make demo   install what is missing, train/build if stale, start rasa run (:$(PORT)) and the app (:$(APP_PORT))"
	@echo "make demo-cluster  the demo as a cluster: redis-server, REPLICAS=$(REPLICAS) rasa run behind nginx (:$(PORT)), the app (:$(APP_PORT))"
	@echo "make test   install what is missing (incl. Debian's chromium), type-check, run the whole suite"
	@echo "make check  the inner loop: unit tests, store contract suite and mypy; no servers, under a minute"
	@echo "make stories  validate proactive.yml (file:line) and play the proactive test stories (rasa-bot/proactive_tests)"
	@echo "make adopt INTO=path/to/bot  add the copilot to an existing Rasa bot (README: Using it in your own bot)"
	@echo "make bench  measure latency, throughput, tick cost, memory (BENCH_QUICK=1: smaller sizes); see BENCHMARKS.md"

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-nodeps.txt constraints.txt scripts/install-venv.sh
	scripts/install-venv.sh

# Retrained only when the domain, data or pipeline changed.
model: $(MODEL)
$(MODEL): $(VENV)/.installed $(BOT_TRAINING)
	cd $(BOT) && $(RASA) train --fixed-model-name proactive --out models --quiet

# The host app: npm deps as locked, then a production build when a source changed.
app: $(APP_BUILD)
$(APP)/node_modules/.installed: $(APP)/package.json $(APP)/package-lock.json scripts/install-app.sh
	scripts/install-app.sh
$(APP_BUILD): $(APP)/node_modules/.installed $(APP_SOURCES)
	set -o pipefail; cd $(APP) && npm run build --silent 2>&1 | { grep -v 'Unknown user config' || true; }
	@test -f $@

# Debian's chromium for the browser tests (apt-get when missing).
chromium:
	@scripts/install-chromium.sh

# Debian's redis-server and nginx for the cluster tests, and iproute2's ss with which they read
# listening sockets (apt-get when missing; the tests start their own servers, on loopback ports).
redis:
	@scripts/install-redis.sh
nginx:
	@scripts/install-nginx.sh

# Debian's wrk, the load generator of the ingest-throughput figure (apt-get when missing).
wrk:
	@scripts/install-wrk.sh

validate: $(VENV)/.installed
	cd $(BOT) && $(RASA) data validate --fail-on-warnings

demo: $(VENV)/.installed $(MODEL) $(APP_BUILD)
	PORT=$(PORT) APP_PORT=$(APP_PORT) scripts/demo.sh

# The demo as a production cluster on loopback (README: Running several replicas): Debian's
# redis-server and nginx (installed when missing), REPLICAS replicas with PROACTIVE_PRODUCTION=1
# and the cluster's own secrets (.cluster/secrets.env), nginx on PORT, the app on APP_PORT.
demo-cluster: $(VENV)/.installed $(MODEL) $(APP_BUILD) redis nginx
	PYTHONPATH=$(BOT):tests:. $(PY) -m cluster.demo --replicas $(REPLICAS) --port $(PORT) --app-port $(APP_PORT)

test: typecheck $(MODEL) $(APP_BUILD) chromium redis nginx
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=20

# The fast inner loop: no rasa run, no browser, no app build.
check: $(VENV)/.installed
	$(PY) -m mypy
	PROACTIVE_FUZZ_SCALE=0.1 $(PY) -m pytest tests/unit -q

# proactive.yml checked at file:line, then the proactive test stories played on a simulated
# clock (also run by `make check` and `make test`, through tests/unit).
stories: $(VENV)/.installed
	cd $(BOT) && $(CURDIR)/$(PY) -m addons.checks validate proactive.yml
	cd $(BOT) && $(CURDIR)/$(PY) -m addons.checks stories

# The copilot added to an existing Rasa bot (adopt/): channels, engine and actions copied,
# domain, data and credentials merged, proactive.yml with production defaults, validated.
adopt: $(VENV)/.installed
	@test -n "$(INTO)" || { echo 'usage: make adopt INTO=path/to/your/rasa/bot' >&2; exit 2; }
	$(PY) -m adopt "$(INTO)"

# mypy over rasa-bot/ (strictness in mypy.ini) and tsc over app/.
typecheck: $(VENV)/.installed $(APP)/node_modules/.installed
	$(PY) -m mypy
	cd $(APP) && npm run --silent typecheck

# Every figure of BENCHMARKS.md beside its baseline; the table is printed and written to
# bench/results.json. `make bench BENCH=tick` runs one group (tick memory hub latency
# throughput fanout browser inject).
bench: $(VENV)/.installed $(MODEL) $(APP_BUILD) chromium wrk
	PYTHONPATH=$(BOT):tests:. $(PY) -m bench.run $(BENCH)

# After editing requirements*.txt: rebuild the venv from scratch and re-pin everything.
constraints:
	rm -rf $(VENV) && : > constraints.txt && scripts/install-venv.sh
	{ echo "# Every package of the working environment, pinned (pip freeze of .venv). Regenerate with"; \
	  echo "# \`make constraints\` after changing requirements*.txt."; \
	  $(PY) -m pip freeze --disable-pip-version-check; } > constraints.txt

clean:
	rm -rf $(BOT)/models $(BOT)/.rasa $(BOT)/results .pytest_cache $(APP)/.next test-artifacts
