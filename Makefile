# The two commands of the README:
#   make reproduce   set up (first time), then run every paper notebook (quick with a GPU, smoke without)
#   make test        set up (first time), then the whole test suite (smoke notebooks included)
# Both run in a virtual environment, .venv/, built from requirements/lock.txt: the exact package
# versions CI tested. It is rebuilt when the lock or pyproject.toml changes.
# Data and weights: $SRCORE_DATA / $SRCORE_WEIGHTS when set, else data/ and weights/ in the checkout
# (srcore.data, srcore.pretrained.weights); without data, the smoke profile runs on embedded photos.
PYTHON ?= python3
VENV ?= .venv
LOCK := requirements/lock.txt
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --quiet --disable-pip-version-check
ARGS ?=

.PHONY: install reproduce test test-latest lock clean-runs
install: $(VENV)/.installed

$(VENV)/.installed: $(LOCK) pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -r $(LOCK)
	$(PIP) install --no-deps --no-build-isolation -e . || $(PIP) install --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

reproduce: install
	$(PY) -m srcore.reproduce $(ARGS)

test: install
	$(PY) -m pytest --nbval-lax tests notebooks $(ARGS)

# Not in CI: the newest versions pyproject.toml allows, in .venv-latest/. When it passes,
# `make lock` writes them into the lock (the one-line refresh), and CI tests them from then on.
test-latest:
	rm -rf .venv-latest
	$(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip --quiet install --upgrade -c requirements/constraints.in -e ".[test]"
	.venv-latest/bin/python -m pytest --nbval-lax tests notebooks $(ARGS)

# Rewrites requirements/lock.txt: newest versions allowed by pyproject.toml (and the torch cap of
# requirements/constraints.in) for Linux x86-64 and CPython 3.10-3.12, resolved by uv.
lock:
	$(PYTHON) -m pip --quiet install --user uv 2>/dev/null || $(PYTHON) -m pip --quiet install uv
	$(PYTHON) -m uv pip compile pyproject.toml --extra test --universal --python-version 3.10 --upgrade \
		--constraint requirements/constraints.in --no-header --quiet -o $(LOCK)

# Checkpoints and executed notebooks of every run (results/ is kept).
clean-runs:
	rm -rf runs/
