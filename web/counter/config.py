"""Settings read once from the environment, each value cast and checked; errors name it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

from dotenv import load_dotenv
from sqlalchemy import URL

from counter.envvars import (
    SECRET_VARIABLES,
    environment,
    flag,
    read,
    request_budget,
    seconds,
    setting,
    whole,
)
from counter.envvars import SettingsError as SettingsError  # raised here; callers import it here

# The placeholder that .quartenv ships; production refuses it (and anything this short).
DEVELOPMENT_SECRET_KEY = "dev-only-secret-key-change-me"  # noqa: S105 (public, and refused)
MIN_PRODUCTION_SECRET_LENGTH = 16
REPO_DIR = Path(__file__).resolve().parents[2]
# Written by the host tools (e.g. the port `make local-db` chose); read before .quartenv.
LOCAL_ENV_FILE = REPO_DIR / ".local" / "quartenv"


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment; tests build one directly."""

    secret_key: str = setting("SECRET_KEY")
    db_username: str = setting("DB_USERNAME")
    db_password: str = setting("DB_PASSWORD")
    db_host: str = setting("DB_HOST")
    database_name: str = setting("DATABASE_NAME")
    db_port: int = setting("DB_PORT", whole(1, 65535), 3306)
    db_pool_size: int = setting("DB_POOL_SIZE", whole(1, 1000), 10)
    environment: str = setting("QUART_ENV", environment, "production")
    # Seconds to wait for a TCP connection before the request gets a 503.
    db_connect_timeout: float = setting("DB_CONNECT_TIMEOUT", seconds, 2.0)
    # Seconds start-up waits for the database (it may still be initialising) before giving up.
    db_startup_timeout: float = setting("DB_STARTUP_TIMEOUT", seconds, 60.0)
    # Below MySQL's default wait_timeout (28800 s): the pool never hands out a closed connection.
    db_pool_recycle: int = setting("DB_POOL_RECYCLE", whole(1), 1800)
    # Seconds a request may spend on database work before it gets a 503.
    db_query_timeout: float = setting("DB_QUERY_TIMEOUT", request_budget, 5.0)
    # Honoured in development only (the `quart` CLI reads it), refused in production.
    debug: bool = setting("QUART_DEBUG", flag, False)
    # The app's own line per request (observe.py); off, as nginx logs the same ID for free.
    log_requests: bool = setting("LOG_REQUESTS", flag, False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Build settings from the environment; a bad value raises SettingsError naming it."""
        values = {}
        for f in fields(cls):
            name, cast = f.metadata["env"], f.metadata["cast"]
            raw = read(environ, name)
            if raw is None:
                if f.default is MISSING:
                    raise SettingsError(
                        f"{name} is not set: add it to the environment or to .quartenv"
                    )
                continue
            try:
                values[f.name] = cast(raw)
            except ValueError as err:
                shown = "<hidden>" if name in SECRET_VARIABLES else repr(raw)
                raise SettingsError(f"{name}={shown} is invalid: {err}") from None
        settings = cls(**values)
        settings.check()
        return settings

    def to_env(self) -> dict[str, str]:
        """The variables that make `from_env` build exactly these settings (for child processes)."""
        values = ((f.metadata["env"], getattr(self, f.name)) for f in fields(self))
        return {name: str(int(v)) if isinstance(v, bool) else str(v) for name, v in values}

    @property
    def is_production(self) -> bool:
        """Production turns on the secret checks and keeps debug and reload off."""
        return self.environment == "production"

    def check(self) -> None:
        """Refuse combinations that are only unsafe together, e.g. the dev secret in production."""
        if self.is_production and (
            self.secret_key == DEVELOPMENT_SECRET_KEY
            or len(self.secret_key) < MIN_PRODUCTION_SECRET_LENGTH
        ):
            raise SettingsError(
                "SECRET_KEY is the development placeholder or shorter than "
                f"{MIN_PRODUCTION_SECRET_LENGTH} characters, which QUART_ENV=production refuses: "
                "set a random one, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        if self.is_production and self.debug:
            raise SettingsError("QUART_DEBUG is on, which QUART_ENV=production refuses: unset it")

    @property
    def db_lock_wait(self) -> int:
        """Whole seconds the server waits for a lock: a third of the request budget, at least 1."""
        return max(1, int(self.db_query_timeout / 3))

    def database_url(self) -> URL:
        """The app's SQLAlchemy URL; URL.create escapes passwords with '@', '/' or '%'."""
        return URL.create(
            "mysql+aiomysql",
            username=self.db_username,
            password=self.db_password,
            host=self.db_host,
            port=self.db_port,
            database=self.database_name,
            query={"charset": "utf8mb4"},
        )


def load_quartenv() -> None:
    """Load .local/quartenv, then .quartenv, into os.environ; the shell's variables win."""
    for path in (LOCAL_ENV_FILE, REPO_DIR / ".quartenv"):
        if path.is_file():
            load_dotenv(path, override=False)
