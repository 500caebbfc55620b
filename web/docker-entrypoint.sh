#!/bin/sh
# The web container's start command: migrate, then become Hypercorn.
# Migrations run here, once per container start and before any worker exists, never in
# before_serving (Hypercorn's startup timeout and several workers would race). migrations/env.py
# waits for the database and holds a GET_LOCK, so several replicas (--scale web=3) starting
# together migrate one at a time.
set -eu

alembic upgrade head

# exec: Hypercorn replaces this shell and receives SIGTERM from the init directly.
exec hypercorn --config file:hypercorn_conf.py manage:app
