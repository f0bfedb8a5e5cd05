# The two set-up commands of the README: `make demo` and `make test`. Both create .venv when it
# is absent and install pfpyro into it; torch is pinned to the CPU wheel first (see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pfpyro-installed
TORCH_PIN ?= torch==2.13.0
# The exact versions of everything installed (requirements/lock.py; `make lock` refreshes it).
LOCK := requirements/lock.txt

.PHONY: install demo test test-fast lint format docs bench clean notebooks lock check-lock

install: $(STAMP)

$(STAMP): setup.cfg pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip -c $(LOCK)
	$(BIN)/python -m pip install --quiet "$(TORCH_PIN)" -c $(LOCK)
	$(BIN)/python -m pip install --quiet -e ".[dev]" -c $(LOCK)
	$(BIN)/python requirements/lock.py check
	$(BIN)/pfpyro encoder install
	touch $(STAMP)

check-lock: install
	$(BIN)/python requirements/lock.py check

# A fresh, unconstrained install of pfpyro with every extra (newest versions that setup.cfg
# allows, torch at its pin) in a throwaway venv, frozen into the lock. Then `make clean test`.
LOCK_VENV := .lock-venv
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet "$(TORCH_PIN)"
	$(LOCK_VENV)/bin/python -m pip install --quiet ".[dev]"
	$(LOCK_VENV)/bin/python -m pip freeze --all \
		| $(LOCK_VENV)/bin/python requirements/lock.py write > $(LOCK).new
	mv $(LOCK).new $(LOCK)
	rm -rf $(LOCK_VENV) build
	@echo "$(LOCK) written; run make clean test, then commit it"

demo: install
	$(BIN)/python experiments/demo.py

test: install
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check pfpyro experiments tests requirements
	$(BIN)/ruff format --check pfpyro experiments tests requirements
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format pfpyro experiments tests requirements
	$(BIN)/ruff check --fix pfpyro experiments tests requirements

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
	rm -rf $(VENV) $(LOCK_VENV) build dist *.egg-info .pytest_cache
