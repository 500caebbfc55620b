"""The HTML page: every GET counts one visit and shows the total."""

from quart import Blueprint, render_template, request
from quart.typing import ResponseReturnValue

from counter.db import transaction
from counter.queries import increment_counter, select_count

bp = Blueprint("pages", __name__)


@bp.get("/")
async def get_index() -> ResponseReturnValue:
    """Count this visit and show the total; HEAD (which Quart routes here too) only reads it."""
    async with transaction() as conn:
        if request.method == "HEAD":
            count = await select_count(conn)
        else:
            count = await increment_counter(conn)
    page = await render_template("index.html", count=count)
    # Every load is a new visit: no cache may answer in our place.
    return page, 200, {"Cache-Control": "no-store"}
