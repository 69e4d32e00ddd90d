# City portal and Individual Number Card services. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv/bin
export PORTAL_CONFIG ?= development
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: help setup services run serve test lint typecheck db demo bench translations clean-db deploy-local deploy-local-stop load

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

setup: ## Install what is missing (Debian packages, .venv, npm tools, translations)
	@bash scripts/setup.sh

services: setup ## Start PostgreSQL, Redis and pcscd on 127.0.0.1 for tests
	@bash scripts/services.sh >/dev/null

db: setup ## Migrate the embedded SQLite database
	@$(VENV)/flask --app wsgi db upgrade 2>&1 | grep -v '^INFO' || true

demo: db ## Load the demo city and its virtual cards (once) and print the logins
	@$(VENV)/flask --app wsgi demo load
	@$(VENV)/flask --app wsgi demo cards
	@$(VENV)/flask --app wsgi kiosk demo --server http://$(HOST):$(PORT)
	@$(VENV)/flask --app wsgi certificates hsm-init
	@$(VENV)/flask --app wsgi push keys >/dev/null
	@$(VENV)/flask --app wsgi points daily
	@$(VENV)/flask --app wsgi points demo-clients

run: demo ## Install, migrate, load the demo city and serve on 127.0.0.1
	@echo
	@echo "Resident portal:  http://$(HOST):$(PORT)/"
	@echo "Staff console:    http://$(HOST):$(PORT)/staff/login"
	@echo "Mail sent by the portal is written to instance/outbox/*.eml"
	@echo
	@$(VENV)/flask --app wsgi run --host $(HOST) --port $(PORT)

lint: setup ## ruff check + ruff format --check
	@$(VENV)/ruff check --quiet .
	@$(VENV)/ruff format --check --quiet .

typecheck: setup ## mypy on card/, kiosk/ (and points/ when it exists)
	@$(VENV)/mypy $$(ls -d card kiosk points 2>/dev/null)

test: setup services lint typecheck ## Lint, type-check and run the whole suite (SQLite and PostgreSQL)
	@eval "$$(bash scripts/services.sh)" && PORTAL_CONFIG=test $(VENV)/pytest -n 2 --dist loadgroup -q

bench: services ## Run the benchmarks in bench/
	@eval "$$(bash scripts/services.sh)" && for b in bench/*.py; do echo "== $$b"; $(VENV)/python $$b || exit 1; done

translations: setup ## Extract messages and update the catalogues (then translate portal/translations/ja)
	@$(VENV)/pybabel extract -F babel.cfg -k _l -o portal/translations/messages.pot $$(ls -d portal kiosk points 2>/dev/null) >/dev/null
	@$(VENV)/pybabel update -i portal/translations/messages.pot -d portal/translations
	@bash scripts/setup.sh

clean-db: ## Remove the embedded development database (the demo city is loaded again by make run)
	rm -f instance/portal.sqlite3

deploy-local: setup ## The production shape on 127.0.0.1 (PostgreSQL, Redis, gunicorn, RQ, scheduler, nginx TLS :8443)
	@bash deploy/local.sh up

deploy-local-stop: ## Stop everything deploy-local started (its state stays in /var/tmp/portal-deploy)
	@bash deploy/local.sh down

load: ## Locust against make deploy-local: requests/s, p95, errors
	@$(VENV)/python bench/load.py
