# The two commands: `make demo` and `make test`. Each installs whatever is missing first.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV    := .venv
PY      := $(VENV)/bin/python
RASA    := $(CURDIR)/$(VENV)/bin/rasa
BOT     := rasa-bot
MODEL   := $(BOT)/models/proactive.tar.gz
PORT    ?= 5005
export RASA_TELEMETRY_ENABLED := false
export PYTHONWARNINGS := ignore

BOT_TRAINING := $(BOT)/config.yml $(BOT)/domain.yml $(wildcard $(BOT)/data/*.yml)

.PHONY: help demo test venv model validate constraints clean

help:
	@echo "make demo   install what is missing, train if stale, start rasa run on :$(PORT)"
	@echo "make test   install what is missing, run the whole suite"

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-dev.txt requirements-nodeps.txt constraints.txt scripts/install-venv.sh
	scripts/install-venv.sh

# Retrained only when the domain, data or pipeline changed.
model: $(MODEL)
$(MODEL): $(VENV)/.installed $(BOT_TRAINING)
	cd $(BOT) && $(RASA) train --fixed-model-name proactive --out models --quiet

validate: $(VENV)/.installed
	cd $(BOT) && $(RASA) data validate --fail-on-warnings

demo: $(VENV)/.installed $(MODEL)
	PORT=$(PORT) scripts/demo.sh

test: $(VENV)/.installed $(MODEL)
	$(PY) -m pytest

# After editing requirements*.txt: rebuild the venv from scratch and re-pin everything.
constraints:
	rm -rf $(VENV) && : > constraints.txt && scripts/install-venv.sh
	{ echo "# Every package of the working environment, pinned (pip freeze of .venv). Regenerate with"; \
	  echo "# \`make constraints\` after changing requirements*.txt."; \
	  $(PY) -m pip freeze --disable-pip-version-check; } > constraints.txt

clean:
	rm -rf $(BOT)/models $(BOT)/.rasa $(BOT)/results .pytest_cache
