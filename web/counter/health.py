"""Probes for orchestrators: liveness without the database, readiness with it."""

from quart import Blueprint
from quart.typing import ResponseReturnValue

from counter.db import transaction
from counter.queries import select_count

bp = Blueprint("health", __name__)


@bp.get("/healthz")
async def get_healthz() -> ResponseReturnValue:
    """The process is alive and serving; says nothing about the database."""
    return {"status": "ok"}


@bp.get("/readyz")
async def get_readyz() -> ResponseReturnValue:
    """The database answers and holds the counter; a 503 (from the error handler) otherwise."""
    async with transaction() as conn:
        await select_count(conn)
    return {"status": "ready"}
