"""Reading one environment variable: casts that check its value, and secrets from files."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import MISSING, field
from pathlib import Path
from typing import Any

ENVIRONMENTS = ("development", "production")
# Kept exactly as given (spaces too), readable from a file (NAME_FILE), never echoed.
SECRET_VARIABLES = ("SECRET_KEY", "DB_PASSWORD")


class SettingsError(ValueError):
    """A missing or invalid setting; the message names the variable and says what is expected."""


def whole(minimum: int, maximum: int = 2**31) -> Callable[[str], int]:
    def cast(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError("expected a whole number") from None
        if not minimum <= value <= maximum:
            raise ValueError(f"expected a whole number from {minimum} to {maximum}")
        return value

    return cast


def seconds(raw: str, minimum: float = 0) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ValueError("expected a number of seconds") from None
    if not (math.isfinite(value) and value > 0 and value >= minimum):
        bound = f"of at least {minimum:g}" if minimum else "above 0"
        raise ValueError(f"expected a finite number of seconds {bound}")
    return value


def request_budget(raw: str) -> float:
    # A third goes to the server's lock wait, which MySQL counts in whole seconds.
    return seconds(raw, minimum=3)


def flag(raw: str) -> bool:
    # The values Quart's own get_debug_flag() treats as off; anything else is on.
    return raw.lower() not in ("0", "false", "no")


def environment(raw: str) -> str:
    if raw not in ENVIRONMENTS:
        raise ValueError(f"expected one of {', '.join(ENVIRONMENTS)}")
    return raw


def setting(env: str, cast: Callable[[str], Any] = str, default: Any = MISSING) -> Any:
    """A field read from the variable `env`; without a default, the variable is required."""
    return field(default=default, metadata={"env": env, "cast": cast})


def read(environ: Mapping[str, str], name: str) -> str | None:
    """`name`, or the content of the file `name_FILE` names (Docker secrets); None if unset."""
    raw, path = environ.get(name, ""), environ.get(f"{name}_FILE", "")
    if name not in SECRET_VARIABLES:
        return raw.strip() or None
    if raw and path:
        raise SettingsError(f"{name} and {name}_FILE are both set: set only one of them")
    if not path:
        return raw or None
    try:
        # A secret file usually ends in a newline that is not part of the secret.
        return Path(path).read_text().removesuffix("\n").removesuffix("\r") or None
    except OSError as err:
        raise SettingsError(f"{name}_FILE={path!r} cannot be read: {err.strerror}") from None
