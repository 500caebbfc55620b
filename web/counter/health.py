"""Probes for orchestrators: liveness without the database, readiness with it."""

from functools import cache
from pathlib import Path

from quart import Blueprint
from quart.typing import ResponseReturnValue

from counter.db import transaction
from counter.errors import SchemaNotReadyError
from counter.queries import select_count, select_schema_revision

bp = Blueprint("health", __name__)


@bp.get("/healthz")
async def get_healthz() -> ResponseReturnValue:
    """The process is alive and serving; says nothing about the database."""
    return {"status": "ok"}


@bp.get("/readyz")
async def get_readyz() -> ResponseReturnValue:
    """The database answers, is migrated to head and holds the counter row; a 503 otherwise."""
    async with transaction() as conn:
        if await select_schema_revision(conn) != head_revision():
            raise SchemaNotReadyError()
        await select_count(conn)
    return {"status": "ready"}


@cache
def head_revision() -> str | None:
    """The newest revision in migrations/, which the database must be at to serve."""
    # Imported here: Alembic costs each server process about 11 MB, and only /readyz needs it.
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config(str(Path(__file__).resolve().parents[1] / "alembic.ini"))
    return ScriptDirectory.from_config(config).get_current_head()
