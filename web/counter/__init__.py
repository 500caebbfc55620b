"""The page-counter app: `create_app(settings)` builds it; importing the package runs nothing."""

from __future__ import annotations

from hypercorn.middleware import ProxyFixMiddleware
from quart import Quart

from counter import api, db, errors, health, hotpath, metrics, observe, views
from counter.config import Settings


def create_app(settings: Settings | None = None) -> Quart:
    """Build the app from `settings`, or from the environment when none are given."""
    settings = settings or Settings.from_env()
    app = Quart(__name__)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        # Production never debugs; development may, when QUART_DEBUG asks for it.
        DEBUG=False if settings.is_production else settings.debug,
        # JSON bodies here are tiny; anything larger is refused before it is read (413).
        MAX_CONTENT_LENGTH=64 * 1024,
        # Development re-reads an edited template on the next render; production never checks.
        TEMPLATES_AUTO_RELOAD=not settings.is_production,
    )
    observe.init_app(app)  # first: every later hook and handler logs with the request's ID
    metrics.init_app(app, db.get_db)
    db.init_app(app, settings)
    errors.init_app(app, hotpath.render)
    for blueprint in (views.bp, api.bp, health.bp):
        app.register_blueprint(blueprint)
    # nginx is the one hop in front of us: trust its X-Forwarded-For/-Proto and nobody else's.
    app.asgi_app = ProxyFixMiddleware(app.asgi_app, mode="legacy", trusted_hops=1)  # type: ignore[method-assign]
    return app
