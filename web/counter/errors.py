"""Errors raised on purpose, and handlers that turn any error into a clean JSON or HTML reply."""

from __future__ import annotations

from quart import Quart, current_app, jsonify, render_template, request
from quart.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

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


def init_app(app: Quart) -> None:
    """Register the handlers; the most specific class wins, so HTTP errors keep their status."""
    app.register_error_handler(APIError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected_error)


async def handle_api_error(error: APIError) -> ResponseReturnValue:
    """Render an APIError; 503s say when to retry."""
    headers = {"Retry-After": "5"} if error.status == 503 else {}
    return await _render(error.status, error.code, error.message, headers)


async def handle_http_exception(error: HTTPException) -> ResponseReturnValue:
    """404, 405, 413 and friends, in the same shape as our own errors."""
    status = error.code or 500
    code = (error.name or "error").lower().replace(" ", "_")
    # Keep the one header a client needs to recover (405's Allow); drop the HTML content type.
    allow = {k: v for k, v in error.get_headers() if k == "Allow"}
    return await _render(status, code, error.description or error.name, allow)


async def handle_unexpected_error(error: Exception) -> ResponseReturnValue:
    """Log the traceback for us; the client gets a plain 500 with no internals."""
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return await _render(500, APIError.code, APIError.message, {})


async def _render(
    status: int, code: str, message: str, headers: dict[str, str]
) -> ResponseReturnValue:
    if request.path.startswith(JSON_PATH_PREFIXES):
        return jsonify(error={"code": code, "message": message}), status, headers
    page = await render_template("error.html", status=status, message=message)
    return page, status, headers
