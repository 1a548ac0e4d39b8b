# studybook: `make report` and `make test` work on a fresh machine; `make setup` is idempotent.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# BACKEND=jax also installs the optional JAX backend (requirements-jax.txt); the tests always do.
BACKEND ?= tensorflow
JAX    := $(VENV)/.installed-jax

.PHONY: help setup data report smoke test notebooks clean
help:
	@echo "make report   set up (first time) and build reports/report.html (ARGS='--profile smoke' ...)"
	@echo "make test     set up (first time) and run the test suite"
	@echo "make setup    create .venv, install requirements, make sure Fashion-MNIST is present"
	@echo "              (BACKEND=jax: also Keras's JAX backend, for reports with backend: jax)"
	@echo "make smoke    the default report in the smoke profile (about a minute)"
	@echo "make notebooks  rewrite notebooks/*.ipynb from the kinds registry (src/helpers/config/kinds.py)"

setup: $(STAMP) $(if $(filter jax,$(BACKEND)),$(JAX)) data

# Re-installs only when the requirements change.
$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

$(JAX): requirements-jax.txt $(STAMP)
	$(BIN)/python -m pip install -q -r requirements-jax.txt
	touch $@

data: $(STAMP)
	@tools/ensure_data.sh $(BIN)/python

report: setup
	$(BIN)/python build_report.py $(ARGS)

smoke: setup
	$(BIN)/python build_report.py --profile smoke $(ARGS)

test: setup $(JAX)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

notebooks: setup
	$(BIN)/python -m helpers.build.notebooks

.PHONY: bench
bench: setup
	$(BIN)/python benchmarks/run.py $(ARGS)

clean:
	rm -rf reports/*.html reports/*.json reports/*/
