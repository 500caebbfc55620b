"""Settings read once from the environment, each value cast and checked; errors name it."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from dotenv import load_dotenv
from sqlalchemy import URL

T = TypeVar("T")

# The placeholder that .quartenv ships; production refuses it (and anything this short).
DEVELOPMENT_SECRET_KEY = "dev-only-secret-key-change-me"  # noqa: S105 (public, and refused)
MIN_PRODUCTION_SECRET_LENGTH = 16
ENVIRONMENTS = ("development", "production")


class SettingsError(ValueError):
    """A missing or invalid setting; the message names the variable and says what is expected."""


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment; tests build one directly."""

    secret_key: str
    db_username: str
    db_password: str
    db_host: str
    database_name: str
    db_port: int = 3306
    db_pool_size: int = 10
    environment: str = "production"
    # Seconds to wait for a TCP connection before the request gets a 503.
    db_connect_timeout: float = 2.0
    # Seconds start-up waits for the database (it may still be initialising) before giving up.
    db_startup_timeout: float = 60.0
    # Below MySQL's default wait_timeout (28800 s), so the pool never hands out a connection the
    # server has already closed for idleness.
    db_pool_recycle: int = 1800
    # Seconds a request may spend on database work before it gets a 503: a server that accepts
    # but never answers (frozen, partitioned) must not hang requests forever.
    db_query_timeout: float = 5.0
    # QUART_DEBUG=1: honoured in development only (the `quart` CLI reads it), refused in production.
    debug: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        """Build settings from the environment; a bad value raises SettingsError naming it."""
        settings = cls(
            secret_key=_required(environ, "SECRET_KEY"),
            db_username=_required(environ, "DB_USERNAME"),
            db_password=_required(environ, "DB_PASSWORD"),
            db_host=_required(environ, "DB_HOST"),
            database_name=_required(environ, "DATABASE_NAME"),
            db_port=_optional(environ, "DB_PORT", _port, 3306),
            db_pool_size=_optional(environ, "DB_POOL_SIZE", _positive_int, 10),
            environment=_optional(environ, "QUART_ENV", _environment, "production"),
            db_connect_timeout=_optional(environ, "DB_CONNECT_TIMEOUT", _positive_float, 2.0),
            db_startup_timeout=_optional(environ, "DB_STARTUP_TIMEOUT", _positive_float, 60.0),
            db_pool_recycle=_optional(environ, "DB_POOL_RECYCLE", _positive_int, 1800),
            db_query_timeout=_optional(environ, "DB_QUERY_TIMEOUT", _positive_float, 5.0),
            debug=_optional(environ, "QUART_DEBUG", _flag, False),
        )
        settings.check()
        return settings

    @property
    def is_production(self) -> bool:
        """Production turns on the secret checks and keeps debug and reload off."""
        return self.environment == "production"

    def check(self) -> None:
        """Refuse combinations that are only unsafe together, e.g. the dev secret in production."""
        if not self.secret_key:
            raise SettingsError("SECRET_KEY is empty: set it to a long random string")
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
            # The `quart` CLI would turn the debugger on from QUART_DEBUG after create_app.
            raise SettingsError("QUART_DEBUG is on, which QUART_ENV=production refuses: unset it")

    def database_url(self, database: str | None = None) -> URL:
        """The app's SQLAlchemy URL; URL.create escapes passwords with '@', '/' or '%'."""
        return URL.create(
            "mysql+aiomysql",
            username=self.db_username,
            password=self.db_password,
            host=self.db_host,
            port=self.db_port,
            database=database or self.database_name,
            query={"charset": "utf8mb4"},
        )


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise SettingsError(f"{name} is not set: add it to the environment or to .quartenv")
    return value


def _optional(environ: Mapping[str, str], name: str, cast: Callable[[str], T], default: T) -> T:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return cast(raw)
    except ValueError as err:
        raise SettingsError(f"{name}={raw!r} is invalid: {err}") from None


def _whole_number(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("expected a whole number") from None


def _positive_int(raw: str) -> int:
    value = _whole_number(raw)
    if value < 1:
        raise ValueError("expected a whole number of at least 1")
    return value


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("expected a number of seconds") from None
    if not value > 0:
        raise ValueError("expected a number of seconds above 0")
    return value


def _port(raw: str) -> int:
    value = _whole_number(raw)
    if not 1 <= value <= 65535:
        raise ValueError("expected a TCP port from 1 to 65535")
    return value


def _flag(raw: str) -> bool:
    # The values Quart's own get_debug_flag() treats as off; anything else is on.
    return raw.lower() not in ("0", "false", "no")


def _environment(raw: str) -> str:
    if raw not in ENVIRONMENTS:
        raise ValueError(f"expected one of {', '.join(ENVIRONMENTS)}")
    return raw


def load_quartenv() -> None:
    """Load the project's .quartenv (nearest one upwards from here); the shell's variables win."""
    for folder in Path(__file__).resolve().parents:
        candidate = folder / ".quartenv"
        if candidate.is_file():
            load_dotenv(candidate, override=False)
            return
