# The two commands of the README:
#   make reproduce   install, then run every paper notebook (quick with a GPU, smoke without)
#   make test        install, then the whole test suite (smoke notebooks included)
PYTHON ?= python3
# Data and weights: $SRCORE_DATA / $SRCORE_WEIGHTS when set, else ../shared/{datasets,weights}
# beside the checkout when present (this project's workplace), else ./data and the caches.
SRCORE_DATA ?= $(firstword $(wildcard $(abspath $(CURDIR)/../shared/datasets)))
SRCORE_WEIGHTS ?= $(firstword $(wildcard $(abspath $(CURDIR)/../shared/weights)))
export SRCORE_DATA SRCORE_WEIGHTS
ARGS ?=

.PHONY: install reproduce test
install:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check -e ".[test]"

reproduce: install
	$(PYTHON) -m srcore.reproduce $(ARGS)

test: install
	$(PYTHON) -m pytest --nbval-lax tests notebooks $(ARGS)
