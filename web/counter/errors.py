"""Errors raised on purpose, and handlers that turn any error into a clean JSON or HTML reply."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

from quart import Quart, Response, current_app, jsonify, request
from quart.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from counter.observe import request_id

# Machine clients (the API and the health probes) get JSON errors; people get an HTML page.
JSON_PATH_PREFIXES = ("/api/", "/healthz", "/readyz")


class APIError(Exception):
    """An error with an HTTP status and a stable machine-readable code."""

    status = 500
    code = "internal_error"
    message = "Something went wrong on our side."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message


class BadRequestError(APIError):
    """The client sent something the endpoint cannot accept."""

    status = 400
    code = "bad_request"
    message = "The request could not be understood."


class DatabaseUnavailableError(APIError):
    """The database did not answer: a 503 the client may retry."""

    status = 503
    code = "database_unavailable"
    message = "The database is unavailable right now. Please try again in a few seconds."


class SchemaNotReadyError(APIError):
    """The tables or the counter row are missing: the migrations have not run."""

    status = 503
    code = "schema_not_ready"
    message = "The database is not migrated: run `make migrate` (alembic upgrade head)."


def init_app(app: Quart, render: Callable[..., Awaitable[str]]) -> None:
    """Register the handlers; error pages use the same `render` as the pages (hotpath.render)."""

    async def reply(
        status: int, code: str, message: str, headers: dict[str, str]
    ) -> ResponseReturnValue:
        if request.path.startswith(JSON_PATH_PREFIXES):
            body = {"code": code, "message": message, "request_id": request_id()}
            return jsonify(error=body), status, headers
        return await render("error.html", status=status, message=message), status, headers

    @app.errorhandler(APIError)
    async def handle_api_error(error: APIError) -> ResponseReturnValue:
        """Render an APIError; 503s say when to retry."""
        headers = {"Retry-After": "5"} if error.status == 503 else {}
        return await reply(error.status, error.code, error.message, headers)

    @app.after_request
    async def relative_redirects(response: Response) -> Response:
        """Werkzeug builds redirects (`/api//counter`) from the client's Host: keep the path."""
        url = urlsplit(response.location or "")
        if url.netloc in (request.host, "") and (url.scheme or url.netloc):
            response.location = urlunsplit(("", "", url.path, url.query, url.fragment))
        return response

    @app.errorhandler(HTTPException)
    async def handle_http_exception(error: HTTPException) -> ResponseReturnValue:
        """404, 405, 413 and friends, in the same shape as our own errors."""
        code = (error.name or "error").lower().replace(" ", "_")
        # Keep the one header a client needs to recover (405's Allow); drop the HTML type.
        allow = {k: v for k, v in error.get_headers() if k == "Allow"}
        return await reply(error.code or 500, code, error.description or error.name, allow)

    @app.errorhandler(Exception)
    async def handle_unexpected_error(error: Exception) -> ResponseReturnValue:
        """Log the traceback for us; the client gets a plain 500 with no internals."""
        current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return await reply(500, APIError.code, APIError.message, {})
