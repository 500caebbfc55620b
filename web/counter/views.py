"""The HTML page: every GET counts one visit and shows the total."""

from quart import Blueprint
from quart.typing import ResponseReturnValue

from counter.db import get_db
from counter.hotpath import render

bp = Blueprint("pages", __name__)


@bp.get("/")
async def get_index() -> ResponseReturnValue:
    """Count this visit and show the total."""
    count = await get_db().counter.count_visit()
    # Every load is a new visit: no cache may answer in our place.
    return await render("index.html", count=count), 200, {"Cache-Control": "no-store"}
