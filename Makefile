# Steward's entry points. `make demo` and `make test` work on a fresh clone with Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# litellm must never fetch its price map from the network; llama.cpp threads should not spin.
export LITELLM_LOCAL_MODEL_COST_MAP := True
export OMP_WAIT_POLICY := passive

.PHONY: install demo test lint typecheck pytest bench lock clean

install: $(STAMP)

# Hash-checked install from the lock; the project itself installs without dependencies.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

demo: install
	$(BIN)/steward demo

test: lint typecheck pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy steward workflows activities workers tests bench

pytest: install
	$(BIN)/pytest -q

bench: install
	$(BIN)/python -m bench

# Regenerate requirements.lock after changing dependencies in pyproject.toml.
lock:
	test -x .lockenv/bin/uv || ($(PYTHON) -m venv .lockenv && .lockenv/bin/pip install --quiet uv==0.13.8)
	.lockenv/bin/uv pip compile pyproject.toml --extra dev --generate-hashes \
		--python-version 3.11 --python-platform x86_64-manylinux_2_28 -o requirements.lock

clean:
	-$(BIN)/steward dev down
	rm -rf $(VENV) .lockenv .steward .mypy_cache .pytest_cache .ruff_cache
