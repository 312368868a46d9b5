# agent-platform: one entry point for the platform (Pulumi) and the agent service.
#
#   make up STACK=dev        create/select the stack and deploy it (Pulumi CLI + AWS credentials)
#   make render STACK=dev    the offline plan: resources.json + manifests/ (no CLI, no AWS)
#   make serve               run the agent service locally on its embedded defaults
#   make test                every test (starts local PostgreSQL and Redis)
#
# `venv` is the same virtualenv Pulumi.yaml names, so the CLI and the tests share it.

SHELL := /bin/bash
PYTHON ?= python3
VENV := venv
PY := $(VENV)/bin/python
STACK ?= dev
OUT ?= out/$(STACK)
# Local file backend unless the user points Pulumi elsewhere (Pulumi Cloud, S3, ...).
PULUMI_BACKEND_URL ?= file://$(CURDIR)/.pulumi
export PULUMI_BACKEND_URL

# This checkout's loopback servers for the service tests (scripts/local-services.sh): on these
# ports, or the next free ones when another checkout holds them. `run` hands the ports in use to
# the command as TEST_DATABASE_URL / TEST_REDIS_URL and stops afterwards what it started.
PG_PORT ?= 5433
REDIS_PORT ?= 6390
export PG_PORT REDIS_PORT
SERVICES := bash scripts/local-services.sh

.PHONY: help setup up preview destroy render verify serve test test-infra test-service policy services services-stop bench mutation lint image-smoke image-redeploy clean tools

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(VENV)/.installed: requirements.txt requirements-dev.txt service/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

# checkov pins boto3 and friends to versions the service cannot share: it gets its own venv.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
$(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install -q "checkov==$(CHECKOV_VERSION)"
	touch $@

setup: $(VENV)/.installed $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION) ## create ./venv (program, service, test tools) and .venv-checkov

# --- promtool and amtool: the Prometheus rule and alert manager checks (no PyPI wheel) --------
# Debian bookworm's packages, fetched by apt and unpacked into .tools/ (no system install, no
# service); tests/observability runs .tools/root/usr/bin/{promtool,amtool}.
PROM_TOOLS := .tools
# A fresh machine may have no apt lists yet: the download retries after `apt-get update`.
PROM_DOWNLOAD := apt-get download -q prometheus=2.42.0+ds-5+deb12u1 prometheus-alertmanager=0.25.0-1+b4
PROM_DEBS := prometheus_2.42.0+ds-5+deb12u1_amd64.deb prometheus-alertmanager_0.25.0-1+b4_amd64.deb
$(PROM_TOOLS)/.installed-2.42.0-0.25.0:
	rm -rf $(PROM_TOOLS) && mkdir -p $(PROM_TOOLS)/debs
	cd $(PROM_TOOLS)/debs && { $(PROM_DOWNLOAD) || { apt-get update -qq && $(PROM_DOWNLOAD); }; }
	cd $(PROM_TOOLS)/debs && printf '%s  %s\n' \
	  81d59a24fce84f7fbe97a45a4f2914b6a5881b5cd1db2a6a0e129e515e1a5f55 prometheus_2.42.0+ds-5+deb12u1_amd64.deb \
	  4fb9aed15cfe8e0c32408e643ab32a1e41ee87d2cc26f18aeba928b1b0b98ae7 prometheus-alertmanager_0.25.0-1+b4_amd64.deb \
	  | sha256sum --check --quiet
	for deb in $(PROM_DEBS); do dpkg -x $(PROM_TOOLS)/debs/$$deb $(PROM_TOOLS)/root; done
	touch $@

tools: $(PROM_TOOLS)/.installed-2.42.0-0.25.0 ## promtool and amtool (Debian packages, unpacked into .tools/) for the rule tests

# --- the platform ---------------------------------------------------------------------------
pulumi-stack: $(VENV)/.installed ## log in to PULUMI_BACKEND_URL and select (or create) STACK
	@command -v pulumi >/dev/null || { echo "error: the Pulumi CLI is required for this target: https://www.pulumi.com/docs/install/" >&2; exit 1; }
	pulumi login "$(PULUMI_BACKEND_URL)"
	pulumi stack select --create "$(STACK)"

up: pulumi-stack ## deploy STACK (default dev)
	pulumi up --stack "$(STACK)" --yes

preview: pulumi-stack ## preview STACK
	pulumi preview --stack "$(STACK)" --diff

destroy: pulumi-stack ## destroy STACK (see README "Destroying a stack")
	pulumi destroy --stack "$(STACK)" --yes

render: $(VENV)/.installed ## offline plan of STACK into OUT (default out/STACK)
	$(PY) -m infra render --stack "$(STACK)" --out "$(OUT)"

verify: $(VENV)/.installed ## check deployed STACK: EKS, RDS, ElastiCache, ALB targets, HTTP (Pulumi CLI + AWS)
	$(PY) -m infra verify --stack "$(STACK)"

# --- the service ----------------------------------------------------------------------------
# The embedded database lives in this checkout (.local/), so another clone never meets its schema.
serve: $(VENV)/.installed ## the agent service on http://127.0.0.1:8000 (embedded SQLite, in-process cache)
	cd service && API_KEYS="$${API_KEYS:-dev-key}" HOST="$${HOST:-127.0.0.1}" \
	  SQLITE_PATH="$${SQLITE_PATH:-$(CURDIR)/.local/agent.db}" ../$(PY) -m agent_service

services: ## start this checkout's loopback PostgreSQL and Redis (kept running; ports in .local/services.env)
	$(SERVICES) start

services-stop: ## stop this checkout's loopback PostgreSQL and Redis (never another checkout's)
	$(SERVICES) stop

# --- checks ---------------------------------------------------------------------------------
# pytest exits 5 when it collects nothing: that is a failure here, not a pass.
test: setup tools ## every test (starts this checkout's PostgreSQL and Redis if needed, stops what it started)
	$(SERVICES) run $(PY) -m pytest

test-infra: setup ## the platform tests only (mocks, moto, manifests; no servers)
	$(PY) -m pytest tests/infra

policy: $(VENV)/.installed ## the policy pack on every stack's graph and on broken graphs; workflow checks
	$(PY) -m pytest tests/policy tests/ci

test-service: $(VENV)/.installed ## the service tests (real PostgreSQL and Redis, and SQLite)
	$(SERVICES) run $(PY) -m pytest tests/service

image-smoke: ## build service/Dockerfile with buildah (no Docker engine), run it, curl it (root)
	bash scripts/container-smoke.sh

image-redeploy: $(VENV)/.installed ## one tree built 5 ways with buildah, each pushed as dev pushes to moto ECR (root)
	bash scripts/image-redeploy-check.sh

# Every scenario against one service process; prints the table and the capacity figures and
# writes bench/results/<date>.json (~3 minutes). BENCH_ARGS: see `python -m bench --help`.
bench: $(VENV)/.installed ## load and capacity benchmarks (prints figures; fault tests run in make test)
	$(SERVICES) run $(PY) -m bench $(BENCH_ARGS)

# Not part of `make test`: mutmut mutates the service's cache, rate limiter, Redis gate, session
# locks and task path and runs the in-process service tests against each mutant, two at a time,
# for at most MUTATION_BUDGET seconds (a stopped run goes on where it stopped). Prints the score
# and the survivors. See README "Mutation testing".
MUTATION_BUDGET ?= 3000
mutation: $(VENV)/.installed ## mutation testing of the core and task path: score and survivors (~50 min)
	MUTATION_BUDGET=$(MUTATION_BUDGET) $(SERVICES) run bash scripts/mutation.sh $(MUTANTS)

lint: setup ## ruff, hadolint, shellcheck and the workflow schemas
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint service/Dockerfile
	$(VENV)/bin/shellcheck scripts/*.sh .ci/run
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-actions .github/actions/*/action.yml

clean: ## remove renders and tool caches
	rm -rf out .pytest_cache .ruff_cache .tools
