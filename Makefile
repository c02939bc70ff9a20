# steadyvoice — `make serve` to run the service, `make test` to run every check.
SHELL := /bin/bash
VENV  := .venv
BIN   := $(VENV)/bin
BOOTSTRAP ?= bash scripts/bootstrap.sh
# Two installs, one stamp each (named for what was installed from): `serve` needs the runtime
# only; lint, typecheck, tests and benchmarks add the dev tools and the eval extras (torch,
# resemblyzer, pocketsphinx). `make serve` after `make test` installs nothing; `make test`
# after `make serve` adds the extras.
HASH        := $(shell cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-12)
SERVE_STAMP := $(VENV)/.installed-serve-$(HASH)
DEV_STAMP   := $(VENV)/.installed-dev-$(HASH)
DEV_EXTRAS  := dev,eval

.PHONY: screenshots serve test install install-dev lint typecheck pytest bench bench-quality bench-reliability bench-soak clean services test-cosyvoice test-deploy

$(SERVE_STAMP): pyproject.toml scripts/bootstrap.sh
	$(BOOTSTRAP) $(VENV)
	rm -f $(VENV)/.installed-serve-* && touch $(SERVE_STAMP)

$(DEV_STAMP): pyproject.toml scripts/bootstrap.sh
	$(BOOTSTRAP) $(VENV) $(DEV_EXTRAS)
	rm -f $(VENV)/.installed-* && touch $(DEV_STAMP) $(SERVE_STAMP)

install: $(SERVE_STAMP)

install-dev: $(DEV_STAMP)

serve: install
	@echo "steadyvoice is installed in $(BIN): run 'source $(BIN)/activate' once in your shell to use the 'steadyvoice' command (or call $(BIN)/steadyvoice)."
	$(BIN)/steadyvoice serve

services:
	bash scripts/ensure-services.sh

lint: install-dev
	$(BIN)/ruff check steadyvoice tests bench
	$(BIN)/ruff format --check steadyvoice tests bench

typecheck: install-dev
	$(BIN)/mypy

# The policy scan of deploy/ (tests/deploy/test_kubernetes_manifests.py): checkov in a venv of
# its own (about 300 MB). In the main venv it would add 63 packages and downgrade boto3 (1.44 to
# 1.35, which the S3 backend uses), networkx and packaging (pip's dry run, 2026-12-07).
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-checkov-3.3.30

$(CHECKOV_STAMP):
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q checkov==3.3.30
	rm -f $(CHECKOV_VENV)/.installed-* && touch $(CHECKOV_STAMP)

pytest: install-dev services $(CHECKOV_STAMP)
	bash scripts/ensure-promtool.sh
	bash scripts/ensure-nginx.sh
	bash scripts/ensure-chromium.sh
	bash scripts/ensure-tools.sh
	$(BIN)/pytest

test: lint typecheck pytest

# The console's screenshots in docs/ui/ (docs/ui.md shows them): the accessibility test takes
# them at 1280 and 360 px on every run, into a temp dir unless told where.
screenshots: install-dev services
	bash scripts/ensure-chromium.sh
	STEADYVOICE_UI_SCREENSHOTS=docs/ui $(BIN)/pytest -p no:cacheprovider tests/console/test_console_a11y.py

# The real container image, built and run (tests/deploy_image, docs/deploy.md): the base image
# from Debian packages, a wheelhouse, `docker build`, then the container and the single-node
# Compose file brought up for real. Needs root and a Docker daemon (started if it is not); about
# 4 minutes here. Separate from `make test`, and CI does not run it (docs/deploy.md says why).
test-deploy: install-dev
	bash deploy/docker/ensure-docker.sh
	bash deploy/docker/build-image.sh steadyvoice:test-deploy
	STEADYVOICE_TEST_IMAGE=steadyvoice:test-deploy $(BIN)/pytest -o addopts="-ra --strict-markers" --timeout 300 -p no:cacheprovider tests/deploy_image

bench: install-dev
	$(BIN)/python bench/engine_rtf.py
	$(BIN)/python bench/service_overhead.py
	$(BIN)/python bench/service_cpu.py
	$(BIN)/python bench/formats.py
	$(BIN)/python bench/streaming.py

# Reliability figures (docs/reliability.md): recovery after kills and power cuts, chaos on SQLite,
# PostgreSQL and the Celery topology, open-loop load for fake and piper, the side-by-side with
# piper's own server.
# About 60 minutes on 2 cores; each writes its JSON under $(BENCH_OUT).
BENCH_OUT ?= data/bench
bench-reliability: install-dev services
	mkdir -p $(BENCH_OUT)
	$(BIN)/python bench/recovery.py --kills 20 --interval 8 --cuts 3 --jobs 10 --json $(BENCH_OUT)/recovery.json
	$(BIN)/python bench/chaos.py --jobs 1000 --clients 16 --kill-every 5 --json $(BENCH_OUT)/chaos-sqlite.json
	$(BIN)/python bench/chaos.py --jobs 1000 --clients 16 --kill-every 5 --database postgresql --json $(BENCH_OUT)/chaos-pg.json
	$(BIN)/python bench/chaos.py --topology celery --jobs 1000 --clients 16 --apis 2 --workers 3 --kill-every 5 --json $(BENCH_OUT)/chaos-celery.json
	$(BIN)/python bench/load.py --engine fake --fake-seconds 0.15 --workers 2 --seconds 60 --json $(BENCH_OUT)/load-fake.json
	$(BIN)/python bench/load.py --engine piper --seconds 60 --json $(BENCH_OUT)/load-piper.json
	$(BIN)/python bench/peer.py --json $(BENCH_OUT)/peer.json
	$(BIN)/python bench/engine_cpu.py --json $(BENCH_OUT)/engine_cpu.json
	$(BIN)/python bench/queueing_floor.py --json $(BENCH_OUT)/queueing_floor.json

# Memory, descriptors and threads under 70 % load for SOAK_MINUTES (30 for the recorded figure).
SOAK_MINUTES ?= 30
bench-soak: install-dev
	mkdir -p $(BENCH_OUT)
	$(BIN)/python bench/soak.py --engine piper --minutes $(SOAK_MINUTES) --json $(BENCH_OUT)/soak.json --csv $(BENCH_OUT)/soak.csv

# Voice adaptation quality (docs/benchmarks.md). The reference speakers are human recordings
# from Debian data packages (about 90 MB to download, 115 MB installed); serve and test never
# need them.
QUALITY_DEBS := klettres-data ktuberling-data alsa-utils
QUALITY_JSON ?= data/bench-quality.json

bench-quality: install-dev
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
	mkdir -p $(dir $(QUALITY_JSON))
	$(BIN)/python bench/quality.py --json $(QUALITY_JSON)

# The CosyVoice contract suite (docs/engines/cosyvoice.md): the adapter on upstream's real code
# with a tiny random-weight model, on the CPU, in its own environment (about 2 GB, never the main
# venv). REPO: an upstream checkout with third_party/Matcha-TTS. Not part of `make test`.
COSYVOICE_VENV  := .venv-cosyvoice
COSYVOICE_STAMP := $(COSYVOICE_VENV)/.installed-$(shell cat pyproject.toml scripts/cosyvoice-env.sh | sha256sum | cut -c1-12)

$(COSYVOICE_STAMP): pyproject.toml scripts/cosyvoice-env.sh
	bash scripts/cosyvoice-env.sh $(COSYVOICE_VENV)
	rm -f $(COSYVOICE_VENV)/.installed-* && touch $(COSYVOICE_STAMP)

test-cosyvoice:
	@test -n "$(REPO)" || { echo "usage: make test-cosyvoice REPO=/path/to/CosyVoice" >&2; exit 2; }
	$(MAKE) $(COSYVOICE_STAMP)
	STEADYVOICE_TEST_COSYVOICE_REPO="$(abspath $(REPO))" $(COSYVOICE_VENV)/bin/pytest tests/contract/cosyvoice -p no:cacheprovider

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .pytest_cache .mypy_cache .ruff_cache
