# One command sets up and runs the tests: `make test`.
# Everything the tests need is installed here (Debian packages and PyPI), so a fresh
# machine (CI runs as root, no input) needs nothing done by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := docker-registry
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install apt-packages python-packages test lint typecheck unit clean

install: apt-packages python-packages

# Debian packages, installed only when missing (apt-get update first, as a fresh machine needs).
apt-packages:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

python-packages: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

lint: install
	$(BIN)/ruff check pipeline tests $(wildcard bench)

typecheck: install
	$(BIN)/mypy --strict pipeline

unit: install
	$(BIN)/pytest

test: lint typecheck unit

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
