# The project's entry points. `make test` is what CI runs (.ci/run) and what a user runs.
.DEFAULT_GOAL := help
SHELL := /bin/bash
VENV := .venv
BAZEL ?= bazel

.PHONY: help setup filters bookinfo down status test lint format lock clean

help:
	@echo "make bookinfo  start the mesh with Bookinfo on this machine; prints the URL"
	@echo "make down      stop every process make bookinfo started"
	@echo "make status    list the mesh's processes"
	@echo "make setup     install everything this project needs (idempotent)"
	@echo "make test      setup, then every Bazel test and the linters"
	@echo "make lint      ruff check and format check, the import layers (import-linter), mypy"
	@echo "make format    ruff format and fix"
	@echo "make lock      re-pin requirements.lock from requirements.in"

setup:
	@tools/setup.sh

# The local mesh: config store, Pilot, Bookinfo's pods (app + pilot-agent + Envoy) and an
# ingress gateway. As root (with ip and iptables) each pod gets its own network namespace on
# the bridge mesh-br0 (10.244.0.0/24); otherwise its own loopback address, and it says so.
# Logs and state go to run/.
MESH := PYTHONPATH=$(CURDIR) $(VENV)/bin/python -m tools.local.main

bookinfo: setup filters
	@$(MESH) up

# The proxies' WebAssembly filters (Mixer's), which Pilot points every Envoy at.
filters:
	@$(BAZEL) build --noshow_progress --ui_event_filters=-info //proxy/extensions/mixer:mixer_filter

down:
	@if [ -x $(VENV)/bin/python ]; then $(MESH) down; fi

status:
	@if [ -x $(VENV)/bin/python ]; then $(MESH) status; fi

test: setup
	$(BAZEL) test //...
	$(MAKE) --no-print-directory lint

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

lock:
	$(VENV)/bin/uv pip compile --quiet --python-version 3.11 requirements.in -o requirements.lock

clean:
	$(BAZEL) clean
	find api \( -name '*_pb2.py' -o -name '*_pb2.pyi' -o -name '*_pb2_grpc.py' \) -delete
	rm -f $(VENV)/.protos-generated
