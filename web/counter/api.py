"""The JSON API beside the page: read the counter, or add one to it."""

import json

from quart import Blueprint, request
from quart.typing import ResponseReturnValue

from counter.db import get_db, transaction
from counter.errors import BadRequestError
from counter.queries import select_count

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/counter")
async def get_counter() -> ResponseReturnValue:
    """The current count, unchanged."""
    async with transaction() as conn:
        count = await select_count(conn)
    return {"count": count}


@bp.post("/counter")
async def post_counter() -> ResponseReturnValue:
    """Add one and return the new count; the body, if any, must be an empty JSON object."""
    await require_empty_json_object()
    return {"count": await get_db().counter.increment()}


async def require_empty_json_object() -> None:
    """Accept no body or `{}`; anything else is a 400, before the database is touched."""
    body = await request.get_data(as_text=False)
    if not body.strip():
        return
    if not request.is_json:
        raise BadRequestError("Send no body, or a JSON object with Content-Type: application/json.")
    try:
        payload = json.loads(body)
    except (ValueError, RecursionError):  # not UTF-8, not JSON, or nested too deep
        raise BadRequestError("The body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise BadRequestError("The body must be a JSON object.")
    if payload:
        names = sorted(map(str, payload))
        more = f" and {len(names) - 3} more" if len(names) > 3 else ""
        raise BadRequestError(f"Unknown fields: {', '.join(names[:3])}{more}.")
