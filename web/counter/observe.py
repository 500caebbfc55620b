"""Request IDs and log lines: always on. Every line logged for a request carries its ID.

- The ID is nginx's (the X-Request-ID it sends; it never passes a client's on), or one made here
  for a direct hit. It goes back in the X-Request-ID header and onto error pages.
- With LOG_REQUESTS=1, one access line per request (logger `counter.access`): method, path,
  status, duration_ms. The same hook feeds the request metrics (metrics.py): one timing.
- `configure_logging` (manage.py calls it): JSON lines in production, readable ones in development;
  the database password and the secret key are masked in every line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from typing import TextIO

from pythonjsonlogger.json import JsonFormatter
from quart import Quart, Response, g, request

from counter import metrics
from counter.config import Settings

HEADER = "X-Request-ID"
# nginx's $request_id is 32 hex digits; a trusted balancer's may be a UUID. Nothing that could
# break a log line (spaces, newlines, quotes) is taken from a header.
VALID_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="-")
access_log = logging.getLogger("counter.access")


def request_id() -> str:
    """The current request's ID ("-" outside a request); error pages show it."""
    return REQUEST_ID.get()


class RequestIdFilter(logging.Filter):
    """Stamps each record with the ID of the request that logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Add `record.request_id`; never drops a record."""
        record.request_id = REQUEST_ID.get()
        return True


class MaskSecrets(logging.Formatter):
    """Formats with `inner`, then replaces each secret (raw or JSON-escaped) with ***."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]) -> None:
        super().__init__()
        self.inner = inner
        # A very short "secret" would mask ordinary words; such a one is refused in production.
        raw = {s for s in secrets if len(s) >= 4}
        self.secrets = sorted(raw | {json.dumps(s)[1:-1] for s in raw}, key=len, reverse=True)

    def format(self, record: logging.LogRecord) -> str:
        """The inner formatter's line, with secrets masked."""
        line = self.inner.format(record)
        for secret in self.secrets:
            if secret in line:
                line = line.replace(secret, "***")
        return line


def formatter(production: bool) -> logging.Formatter:
    """One JSON object per line in production; `time level logger [id] message` in development."""
    if production:
        return JsonFormatter(
            "{levelname}{name}{message}{request_id}",
            style="{",
            rename_fields={"levelname": "level", "name": "logger"},
            timestamp="time",  # ISO 8601, UTC
        )
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")


def configure_logging(settings: Settings, stream: TextIO = sys.stderr) -> logging.Handler:
    """Send every logger's INFO and above to `stream`, through one handler on the root logger."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    secrets = (settings.db_password, settings.secret_key)
    handler.setFormatter(MaskSecrets(formatter(settings.is_production), secrets))
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.INFO)
    access_log.setLevel(logging.INFO if settings.log_requests else logging.WARNING)
    logging.captureWarnings(True)  # Python's warnings become log lines too (JSON in production)
    return handler


def init_app(app: Quart) -> None:
    """Give each request an ID, send it back, and log and count the request when it ends."""
    app.jinja_env.globals["request_id"] = request_id

    @app.before_request
    async def start_request() -> None:
        sent = request.headers.get(HEADER, "")
        REQUEST_ID.set(sent if VALID_ID.fullmatch(sent) else uuid.uuid4().hex)
        g.request_started = time.perf_counter()

    @app.after_request
    async def end_request(response: Response) -> Response:
        seconds = time.perf_counter() - g.get("request_started", time.perf_counter())
        response.headers[HEADER] = REQUEST_ID.get()
        status, method, rule = response.status_code, request.method, request.url_rule
        metrics.observe_request(rule.rule if rule else "unmatched", method, status, seconds)
        if access_log.isEnabledFor(logging.INFO):
            path, ms = request.path, round(seconds * 1000, 1)
            access_log.info("%s %s %d %.1f ms", method, path, status, ms,
                            extra={"method": method, "path": path, "status": status,
                                   "duration_ms": ms})  # fmt: skip
        return response
