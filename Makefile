# steadyvoice — `make serve` to run the service, `make test` to run every check.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)

.PHONY: serve test install lint typecheck pytest bench bench-quality clean services

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
	bash scripts/ensure-promtool.sh
	bash scripts/ensure-nginx.sh
	$(BIN)/pytest

test: lint typecheck pytest

bench: install
	$(BIN)/python bench/engine_rtf.py
	$(BIN)/python bench/service_overhead.py
	$(BIN)/python bench/formats.py
	$(BIN)/python bench/streaming.py

# Voice adaptation quality (docs/benchmarks.md). The reference speakers are human recordings
# from Debian data packages (about 90 MB to download, 115 MB installed); serve and test never
# need them.
QUALITY_DEBS := klettres-data ktuberling-data alsa-utils
QUALITY_JSON ?= data/bench-quality.json

bench-quality: install
	@missing=$$(for p in $(QUALITY_DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else \
	    echo "bench-quality: please install: $$missing (sudo apt-get install -y $$missing)" >&2; \
	    exit 1; \
	  fi; \
	fi
	@$(BIN)/python -c "import importlib.util as u, sys; \
	  sys.exit(not all(u.find_spec(m) for m in ('resemblyzer', 'pocketsphinx', 'torch')))" \
	  || $(BIN)/pip install -q -e '.[eval]'
	mkdir -p $(dir $(QUALITY_JSON))
	$(BIN)/python bench/quality.py --json $(QUALITY_JSON)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
