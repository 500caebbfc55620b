"""The app exactly as manage.py builds it, plus probe routes that show what the app sees.

Test-only: tests/test_security_proxy.py serves it with the real Hypercorn and the real config
(`hypercorn --config file:hypercorn_conf.py tests.proxied_app:app`) behind the real nginx. The app
itself is untouched: create_app() wraps it in ProxyFixMiddleware; these routes only read the result.
"""

from __future__ import annotations

from quart import request
from quart.typing import ResponseReturnValue

from counter import create_app
from counter.config import load_quartenv

# A secret that must never reach a client: the unhandled-error probe raises with it.
SECRET_DETAIL = "probe-secret-7f3a /srv/internal/path"

load_quartenv()
app = create_app()


@app.get("/_probe/client")
async def get_client() -> ResponseReturnValue:
    """What the app believes about the client, after the proxy middleware."""
    return {"remote_addr": request.remote_addr, "scheme": request.scheme, "host": request.host}


@app.get("/_probe/boom")
async def get_boom() -> ResponseReturnValue:
    """An unhandled error with internals in its message."""
    raise RuntimeError(SECRET_DETAIL)
