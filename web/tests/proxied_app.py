"""manage.py's app plus probe routes that show what it sees, for test_security_proxy.py to serve
with the real Hypercorn and config (`tests.proxied_app:probed()`) behind the real nginx."""

from __future__ import annotations

from quart import Quart, request
from quart.typing import ResponseReturnValue

SECRET_DETAIL = "probe-secret-7f3a /srv/internal/path"  # raised by /_probe/boom: never for clients


def probed() -> Quart:
    """The app as manage.py builds it (imported only here: that configures logging), plus
    /_probe/client (what the app believes about its client) and /_probe/boom (an error)."""
    from manage import app

    @app.get("/_probe/client")
    async def get_client() -> ResponseReturnValue:
        return {"remote_addr": request.remote_addr, "scheme": request.scheme, "host": request.host}

    @app.get("/_probe/boom")
    async def get_boom() -> ResponseReturnValue:
        raise RuntimeError(SECRET_DETAIL)

    return app
