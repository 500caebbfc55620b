"""Pre-flight check before serving: `python -m counter.preflight` (the start command's first step).

Settings valid, the server's bind address usable, and the database reachable: a database that is
still starting is waited for with logged retries (tenacity) for up to DB_STARTUP_TIMEOUT. Anything
else ends start-up with one line naming the cause, and exit status 1.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from hypercorn.config import Config
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_before_delay,
    wait_exponential,
)

from counter.config import Settings, SettingsError, load_quartenv
from counter.dberrors import describe, is_permanent, is_unavailable

log = logging.getLogger("counter.preflight")
# One attempt may take this long: a server that accepts but never answers must not eat the budget.
ATTEMPT_TIMEOUT = 10.0


class PreflightError(RuntimeError):
    """Serving cannot start; the message says why in one line."""


def check_server_config(path: str = "hypercorn_conf.py") -> None:
    """Hypercorn's config loads and its bind address (WEB_BIND) can be listened on."""
    try:
        config = Config.from_pyfile(path)
        sockets = config.create_sockets()
    except (ValueError, OverflowError, OSError) as err:
        raise PreflightError(f"WEB_BIND cannot be used: {err}") from None
    for sock in sockets.insecure_sockets + sockets.secure_sockets:
        sock.close()


def _worth_retrying(err: BaseException) -> bool:
    return is_unavailable(err) and not is_permanent(err)


def _log_retry(state: RetryCallState) -> None:
    err = state.outcome.exception() if state.outcome else None
    pause = state.next_action.sleep if state.next_action else 0
    log.warning("database not ready (attempt %d): %s; retrying in %.1f s",
                state.attempt_number, describe(err) if err else "?", pause)  # fmt: skip


async def wait_for_database(settings: Settings) -> None:
    """Connect and run SELECT 1, retrying while the server is still starting."""
    engine = create_async_engine(
        settings.database_url(),
        poolclass=NullPool,
        connect_args={"connect_timeout": settings.db_connect_timeout},
    )
    where = f"{settings.db_host}:{settings.db_port}"
    retrying = AsyncRetrying(
        retry=retry_if_exception(_worth_retrying),
        wait=wait_exponential(multiplier=0.5, max=5),
        stop=stop_before_delay(settings.db_startup_timeout),
        before_sleep=_log_retry,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                async with asyncio.timeout(ATTEMPT_TIMEOUT), engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
    except Exception as err:
        if not is_unavailable(err):
            raise
        reason = describe(err, timeout="the server accepted the connection but did not answer")
        if is_permanent(err):
            raise PreflightError(f"database at {where} refused us: {reason}") from None
        raise PreflightError(
            f"database at {where} did not answer within {settings.db_startup_timeout:g} s "
            f"(DB_STARTUP_TIMEOUT): {reason}"
        ) from None
    finally:
        await engine.dispose()


def main() -> int:
    """Run every check; print one line and return 1 on the first failure."""
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    load_quartenv()
    try:
        settings = Settings.from_env()
        check_server_config()
        asyncio.run(wait_for_database(settings))
    except SettingsError as err:
        print(f"counter: configuration error: {err}", file=sys.stderr)
        return 1
    except PreflightError as err:
        print(f"counter: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
