"""Hypercorn's settings (`hypercorn --config file:hypercorn_conf.py`); preflight checks WEB_BIND."""

import logging
import os

bind = [os.environ.get("WEB_BIND", "0.0.0.0:8000")]
worker_class = "uvloop"
# One process, no worker pool: when it dies its supervisor (Docker, Swarm, Kubernetes) restarts
# it; scale with replicas. Hypercorn's pool master exits 0 when one worker dies, ending the server.
# The development reloader is the exception: it needs a worker process to restart.
use_reloader = os.environ.get("WEB_RELOAD") == "1" and os.environ.get("QUART_ENV") == "development"
workers = 1 if use_reloader else 0
# After SIGTERM, in-flight requests get this long to finish.
graceful_timeout = 10
# Longer than nginx keeps an idle upstream connection (60 s) and allows requests on one (1000),
# so nginx always closes first and never sends a request on a connection we are closing.
keep_alive_timeout = 75
keep_alive_max_requests = 100_000
# nginx writes an access log and so does the app (counter.observe). Hypercorn's own lines go to
# the logger the app configures (manage.py): JSON in production, like every other line.
accesslog = None
errorlog = logging.getLogger("hypercorn.error")
# Don't tell clients what serves them.
include_server_header = False
