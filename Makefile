# Steward's entry points. `make demo` and `make test` work on a fresh clone with Python 3.11.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# litellm must never fetch its price map (or anything else) itself; llama.cpp threads should not spin.
export LITELLM_LOCAL_MODEL_COST_MAP := True
export LITELLM_OFFLINE_MODE := true
export OMP_WAIT_POLICY := passive

.PHONY: install browser demo test lint typecheck pytest bench chaos lock clean

install: $(STAMP)

# Hash-checked install from the lock; the project itself installs without dependencies.
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

demo: install
	$(BIN)/steward demo

test: lint typecheck browser pytest

# Tests of what a person sees drive Debian's chromium with Playwright (Playwright's own
# browser download cannot work offline). Installed once, from Debian's packages.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null || { \
		echo "installing Debian's chromium for the browser tests"; \
		$(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy steward workflows activities workers evals tests bench

# Two test processes (PYTEST_WORKERS), each with its own servers; a module's tests stay
# together, so its module-scoped fixtures start once.
PYTEST_WORKERS ?= 2
pytest: install
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadscope

# The benchmark also installs its peer (pydantic-ai), which Steward never imports.
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): requirements-bench.lock $(STAMP)
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-bench.lock
	touch $@

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

# Kill the worker and the server under load; check every effect happened exactly once.
chaos: install
	$(BIN)/python -m bench.chaos

# Regenerate both locks after changing dependencies in pyproject.toml.
LOCK_FLAGS := --generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28
lock:
	test -x .lockenv/bin/uv || ($(PYTHON) -m venv .lockenv && .lockenv/bin/pip install --quiet uv==0.13.8)
	.lockenv/bin/uv pip compile pyproject.toml --extra dev $(LOCK_FLAGS) -o requirements.lock
	.lockenv/bin/uv pip compile pyproject.toml --extra dev --extra bench $(LOCK_FLAGS) \
		-o requirements-bench.lock

clean:
	-$(BIN)/steward dev down
	rm -rf $(VENV) .lockenv .steward .mypy_cache .pytest_cache .ruff_cache
