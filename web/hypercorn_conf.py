"""Hypercorn's settings, read from the environment (`hypercorn --config file:hypercorn_conf.py`)."""

import logging
import os
import sys

# Hypercorn loads this file before it puts the app's folder on sys.path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from counter.config import Settings, SettingsError, load_quartenv
from counter.startup import DatabaseStartupError, check_database


def _env_int(name: str, default: int) -> int:
    import os
    import sys

    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        sys.exit(f"hypercorn_conf: {name}={raw!r} is invalid: expected a whole number")


# Check the settings and the database once, in the master, so a bad setting, a wrong password or
# an unknown host ends start-up with one line and a non-zero exit instead of every worker failing
# (and Hypercorn exiting 0) or serving nothing but 503s. A database that is still starting is
# waited for, with logged retries, for at most DB_STARTUP_TIMEOUT.
logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
load_quartenv()
try:
    check_database(Settings.from_env())
except SettingsError as err:
    sys.exit(f"counter: configuration error: {err}")
except DatabaseStartupError as err:
    sys.exit(f"counter: {err}")

bind = [os.environ.get("WEB_BIND", "0.0.0.0:8000")]
# One worker per core: each is a process with its own event loop and its own connection pool.
workers = _env_int("WEB_WORKERS", os.cpu_count() or 1)
worker_class = "uvloop"
# SIGTERM lets in-flight requests finish for this long, then the engine is disposed.
graceful_timeout = _env_int("WEB_GRACEFUL_TIMEOUT", 10)
# nginx writes the access log; the app's own errors go to stderr.
accesslog = None
errorlog = "-"
# Don't tell clients what serves them.
include_server_header = False
# Reload on code changes in development only, and only when asked (the Docker dev stack asks).
use_reloader = os.environ.get("WEB_RELOAD") == "1" and os.environ.get("QUART_ENV") == "development"

# Hypercorn copies every name in this module into its config and pickles it for the workers.
del os, sys, logging, _env_int, Settings, SettingsError, load_quartenv
del DatabaseStartupError, check_database
