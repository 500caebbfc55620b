"""Prometheus metrics: always on, served at /metrics for Prometheus to scrape directly.

One process per server (no Hypercorn worker pool), so each process serves its own counts from
prometheus-client's default registry: no multiprocess mode. nginx answers 404 for /metrics; scrape
each replica on the internal network. Updating a metric takes no await and no shared lock worth
the name (prometheus-client's in-process mutex, uncontended on one event loop).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import cache
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from quart import Blueprint, Quart, current_app, has_app_context
from quart.typing import ResponseReturnValue
from sqlalchemy.pool import QueuePool

if TYPE_CHECKING:
    from counter.db import Database  # db imports dberrors, which imports this module

EXTENSION_KEY = "counter.metrics"
# Labelled by the URL rule ("/api/counter"), never the raw path: a bounded set of series.
REQUESTS = Counter(
    "http_requests", "Requests answered, by URL rule, method and status",
    ["route", "method", "status"],
)  # fmt: skip
LATENCY = Histogram(
    "http_request_duration_seconds", "Time from routing to response, by URL rule", ["route"]
)
DB_ERRORS = Counter(
    "db_errors", "Requests that met a database failure, by kind (MySQL error number, timeout...)",
    ["kind"],
)  # fmt: skip
BATCH_SIZE = Histogram(
    "counter_batch_size", "Page views counted by one UPDATE (hotpath.py)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)  # fmt: skip
BREAKER_STATES = ("closed", "open", "half-open")
# Any other method a client invents is counted as "other": no series per made-up word.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

bp = Blueprint("metrics", __name__)


@cache
def _series(route: str, method: str, status: int) -> tuple[Counter, Histogram]:
    # A bounded set of keys (rules x METHODS x statuses); a hit skips labels()' lock and checks.
    return REQUESTS.labels(route, method, str(status)), LATENCY.labels(route)


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    """Count one answered request and its duration."""
    count, latency = _series(route, method if method in METHODS else "other", status)
    count.inc()
    latency.observe(seconds)


def count_db_error(err: BaseException, code: int | None) -> None:
    """Count one database failure; `code` is MySQL's error number, when there is one."""
    if code is not None:
        kind = str(code)
    elif isinstance(err, TimeoutError):
        kind = "timeout"
    else:
        kind = type(getattr(err, "orig", None) or err).__name__
    DB_ERRORS.labels(kind).inc()


class DatabaseCollector(Collector):
    """Read at scrape time from the app serving /metrics: pool connections, breaker state."""

    def collect(self) -> Iterator[Metric]:
        """This app's pools and breaker; nothing outside an app, or before it serves."""
        in_use = GaugeMetricFamily(
            "db_pool_connections_in_use", "Pooled connections checked out now", labels=["pool"]
        )
        breaker = GaugeMetricFamily(
            "db_circuit_breaker_state", "1 for the breaker's current state", labels=["state"]
        )
        database = current_database()
        if database is not None:
            pools = {"transaction": database.engine.pool, "counter": database.counter.engine.pool}
            for name, pool in pools.items():
                if isinstance(pool, QueuePool):
                    in_use.add_metric([name], pool.checkedout())
            for state in BREAKER_STATES:
                breaker.add_metric([state], 1 if database.breaker.state == state else 0)
        yield in_use
        yield breaker


def current_database() -> Database | None:
    """The current app's database, if there is a serving app here."""
    if not has_app_context() or EXTENSION_KEY not in current_app.extensions:
        return None
    get_db: Callable[[], Database] = current_app.extensions[EXTENSION_KEY]
    try:
        return get_db()
    except KeyError:  # not serving (yet, or any more)
        return None


REGISTRY.register(DatabaseCollector())


@bp.get("/metrics")
async def get_metrics() -> ResponseReturnValue:
    """This process's metrics in Prometheus's text format."""
    return generate_latest(REGISTRY), 200, {"Content-Type": CONTENT_TYPE_LATEST}


def init_app(app: Quart, get_db: Callable[[], Database]) -> None:
    """Serve /metrics; `get_db` finds the app's database at scrape time."""
    app.extensions[EXTENSION_KEY] = get_db
    app.register_blueprint(bp)
