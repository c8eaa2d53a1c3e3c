# Two entry points for a fresh machine with Python 3.11+ and make:
#   make demo   - install into .venv and run the nightly job on the bundled samples
#   make test   - install into .venv (with test extras) and run the test suite
# The install includes the celery, k8s and postgres extras: the tests run the job on real Celery workers
# with the deployment's Dagster instance on PostgreSQL, and
# validate the Kubernetes example (deploy/).
PYTHON ?= python3
VENV ?= .venv
AS_OF ?= 2026-10-31
BIN := $(VENV)/bin

.PHONY: demo test install samples ui clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,celery,k8s,postgres]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/lowincome run --as-of $(AS_OF)

test: install
	$(BIN)/python -m pytest -q

# Regenerate the bundled samples (they are committed; the generator is deterministic).
samples: install
	rm -rf data_samples/inbox data_samples/redelivery data_samples/broken_inbox data_samples/expected.json
	$(BIN)/lowincome generate --out data_samples --seed 7 --scale 1

ui: install
	DAGSTER_HOME=$${DAGSTER_HOME:-$(CURDIR)/.dagster_home} ; mkdir -p $$DAGSTER_HOME ; \
	[ -f $$DAGSTER_HOME/dagster.yaml ] || cp deploy/dagster.yaml $$DAGSTER_HOME/dagster.yaml ; \
	DAGSTER_HOME=$$DAGSTER_HOME $(BIN)/dagster dev -w workspace.yaml

clean:
	rm -rf warehouse .dagster_home
