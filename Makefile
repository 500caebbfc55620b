# Thin shortcuts for the usual chores. `make` (or `make help`) lists them.
# Docker: up, down, logs, migrate, shell, mysql, test.  Host, no Docker: venv, local-*, lock.

.DEFAULT_GOAL := help
SHELL := /bin/sh

COMPOSE := docker compose
TEST_COMPOSE := docker compose -f docker-compose.test.yml
# The host port nginx publishes; compose reads the same variable (docker-compose.yml).
HTTP_PORT ?= 80
export HTTP_PORT
URL := http://localhost$(if $(filter 80,$(HTTP_PORT)),,:$(HTTP_PORT))

VENV := web/.venv
# Touched after a successful install: the venv is re-made whenever either lock is newer.
VENV_STAMP := $(VENV)/.installed
LOCAL_BIND := 127.0.0.1:8000
# pip-compile options shared by both locks: hashes, and no package index written into the files.
PIP_COMPILE := CUSTOM_COMPILE_COMMAND="make lock" .venv/bin/pip-compile --quiet --generate-hashes \
	--strip-extras --no-emit-index-url --no-emit-find-links --allow-unsafe

.PHONY: help up down logs migrate shell mysql test \
	venv local-db local-db-stop local-migrate local-run local-test lock

help: ## List the targets
	@awk 'BEGIN { FS = ":.*## " } /^[a-z-]+:.*## / { printf "  %-15s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

# --- Docker --------------------------------------------------------------------------------------

up: ## Build and start the stack, wait until healthy, print the URL
	$(COMPOSE) up -d --build --wait
	@echo "Counter is up: $(URL)"

down: ## Stop and remove the stack's containers (the database volume stays)
	$(COMPOSE) down

logs: ## Follow the stack's logs
	$(COMPOSE) logs -f

migrate: ## Run alembic upgrade head in the web container
	$(COMPOSE) exec web alembic upgrade head

shell: ## Open a Quart shell in the web container
	$(COMPOSE) exec web quart shell

mysql: ## Open a MySQL shell on the dev database as the app's account
	$(COMPOSE) exec db sh -c 'MYSQL_PWD="$$MYSQL_PASSWORD" exec mysql -h 127.0.0.1 -u "$$MYSQL_USER" "$$MYSQL_DATABASE"'

test: ## Run pytest in a container against a throwaway MySQL, then remove both
	$(TEST_COMPOSE) build
	$(TEST_COMPOSE) run --rm test; status=$$?; \
		$(TEST_COMPOSE) down -v --remove-orphans; \
		exit $$status

# --- Host (no Docker) ----------------------------------------------------------------------------

venv: $(VENV_STAMP) ## Create web/.venv from both locks (again when a lock changes)

$(VENV_STAMP): web/requirements.txt web/requirements-dev.txt
	test -x $(VENV)/bin/python || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --require-hashes -r web/requirements.txt -r web/requirements-dev.txt
	touch $@

local-db: $(VENV_STAMP) ## Make sure a MySQL/MariaDB answers on DB_HOST:DB_PORT (starts a private one)
	$(VENV)/bin/python db/local_server.py ensure

local-db-stop: $(VENV_STAMP) ## Stop the private database that local-db started
	$(VENV)/bin/python db/local_server.py stop

local-migrate: local-db ## Run alembic upgrade head against the host database
	cd web && .venv/bin/alembic upgrade head

local-run: local-migrate ## Serve the app with Hypercorn on http://127.0.0.1:8000
	@echo "Serving on http://$(LOCAL_BIND) (Ctrl-C stops)"
	cd web && WEB_BIND=$(LOCAL_BIND) .venv/bin/hypercorn --config file:hypercorn_conf.py manage:app

local-test: local-db ## Run pytest on the host against the host database
	cd web && .venv/bin/pytest

lock: $(VENV_STAMP) ## Re-resolve requirements*.in into the hashed locks
	cd web && $(PIP_COMPILE) --output-file requirements.txt requirements.in
	cd web && $(PIP_COMPILE) --output-file requirements-dev.txt requirements-dev.in
