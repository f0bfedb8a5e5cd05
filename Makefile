# The two set-up commands of the README: `make demo` and `make test`. Both create .venv when it
# is absent and install pfpyro into it; torch is pinned to the CPU wheel first (see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pfpyro-installed
TORCH_PIN ?= torch==2.13.0

.PHONY: install demo test test-fast lint format docs bench clean notebooks

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/pfpyro encoder install
	touch $(STAMP)

demo: install
	$(BIN)/python experiments/demo.py

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check pfpyro experiments tests
	$(BIN)/ruff format --check pfpyro experiments tests
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format pfpyro experiments tests
	$(BIN)/ruff check --fix pfpyro experiments tests

docs: install
	$(BIN)/mkdocs build --strict

# The notebooks of docs/notebooks, executed in place on the demo's PF-lr run: the docs render
# them with these outputs (mkdocs never executes them).
NOTEBOOK_RUN ?= runs/demo/train/paper-0_seed0_pf-lr

notebooks: demo
	PFPYRO_NOTEBOOK_RUN="$(abspath $(NOTEBOOK_RUN))" $(BIN)/jupyter nbconvert --to notebook \
		--execute --inplace --ExecutePreprocessor.record_timing=False docs/notebooks/*.ipynb

bench: install
	$(BIN)/python experiments/bench/encode.py
	$(BIN)/python experiments/bench/svi_step.py
	$(BIN)/python experiments/bench/predict.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache
