# steadyvoice — `make serve` to run the service, `make test` to run every check.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: serve test install lint typecheck pytest bench clean services

$(STAMP): pyproject.toml scripts/bootstrap.sh
	bash scripts/bootstrap.sh $(VENV)
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

serve: install
	$(BIN)/steadyvoice serve

services:
	bash scripts/ensure-services.sh

lint: install
	$(BIN)/ruff check steadyvoice tests bench
	$(BIN)/ruff format --check steadyvoice tests bench

typecheck: install
	$(BIN)/mypy

pytest: install services
	$(BIN)/pytest

test: lint typecheck pytest

bench: install
	$(BIN)/python bench/engine_rtf.py
	$(BIN)/python bench/service_overhead.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
