"""The HTML page: every GET counts one visit and shows the total."""

from quart import Blueprint, current_app, request
from quart.typing import ResponseReturnValue

from counter import batching
from counter.db import autocommit
from counter.queries import select_count

bp = Blueprint("pages", __name__)


@bp.get("/")
async def get_index() -> ResponseReturnValue:
    """Count this visit and show the total; HEAD (which Quart routes here too) only reads it."""
    if request.method == "HEAD":
        async with autocommit() as conn:
            count = await select_count(conn)
    else:
        count = await batching.increment()
    page = await render_page("index.html", count=count)
    # Every load is a new visit: no cache may answer in our place.
    return page, 200, {"Cache-Control": "no-store"}


async def render_page(name: str, **context: object) -> str:
    """Render a template straight from Jinja's cache.

    Quart's render_template also runs the template context processors, and its default one is
    synchronous, so Quart hands it to a thread pool on every call: measured here as the largest
    single cost of the page. Jinja's globals (url_for, request, config) are still available.
    """
    template = current_app.jinja_env.get_template(name)
    return await template.render_async(**context)
