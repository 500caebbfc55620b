"""The JSON API beside the page: read the counter, or add one to it."""

from quart import Blueprint, request
from quart.typing import ResponseReturnValue

from counter import batching
from counter.db import transaction
from counter.errors import BadRequestError
from counter.queries import select_count

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/counter")
async def get_counter() -> ResponseReturnValue:
    """The current count, unchanged: the plain path (one transaction) that your own views copy."""
    async with transaction() as conn:
        count = await select_count(conn)
    return {"count": count}


@bp.post("/counter")
async def post_counter() -> ResponseReturnValue:
    """Add one and return the new count; the body, if any, must be an empty JSON object."""
    await _require_empty_json_object()
    return {"count": await batching.increment()}


async def _require_empty_json_object() -> None:
    """Accept no body or `{}`; anything else is a 400, before the database is touched."""
    body = await request.get_data(as_text=False)
    if not body.strip():
        return
    if not request.is_json:
        raise BadRequestError("Send no body, or a JSON object with Content-Type: application/json.")
    payload = await request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise BadRequestError("The body must be a JSON object.")
    if payload:
        raise BadRequestError(f"Unknown fields: {', '.join(sorted(map(str, payload)))}.")
