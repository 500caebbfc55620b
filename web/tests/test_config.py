"""Settings: every missing or malformed variable is refused with a message that names it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from counter.config import DEVELOPMENT_SECRET_KEY, Settings, SettingsError
from harness.provision import WEB_DIR

VALID = {
    "SECRET_KEY": "a-long-enough-random-secret-value",
    "DB_USERNAME": "counter",
    "DB_PASSWORD": "p@ss/w%rd",
    "DB_HOST": "db.internal",
    "DATABASE_NAME": "counter",
}


def test_reads_and_casts_the_environment() -> None:
    settings = Settings.from_env({**VALID, "DB_PORT": "3307", "DB_POOL_SIZE": "4"})
    assert (settings.db_port, settings.db_pool_size) == (3307, 4)
    assert settings.is_production


def test_url_escapes_special_characters_in_the_password() -> None:
    url = Settings.from_env(VALID).database_url()
    assert url.password == "p@ss/w%rd"
    assert url.host == "db.internal"
    assert "p%40ss%2Fw%25rd" in url.render_as_string(hide_password=False)


@pytest.mark.parametrize(
    "name", ["SECRET_KEY", "DB_USERNAME", "DB_PASSWORD", "DB_HOST", "DATABASE_NAME"]
)
def test_missing_variable_is_named(name: str) -> None:
    environ = {k: v for k, v in VALID.items() if k != name}
    with pytest.raises(SettingsError, match=f"^{name} is not set"):
        Settings.from_env(environ)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DB_PORT", "abc"),
        ("DB_PORT", "70000"),
        ("DB_POOL_SIZE", "0"),
        ("QUART_ENV", "prod"),
        ("DB_QUERY_TIMEOUT", "inf"),
        ("DB_QUERY_TIMEOUT", "2"),
        ("DB_CONNECT_TIMEOUT", "nan"),
    ],
)
def test_malformed_variable_is_named(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name}='{value}' is invalid"):
        Settings.from_env({**VALID, name: value})


@pytest.mark.parametrize("secret", [DEVELOPMENT_SECRET_KEY, "short"])
def test_production_refuses_placeholder_or_short_secret(secret: str) -> None:
    with pytest.raises(SettingsError, match=r"^SECRET_KEY is the development placeholder"):
        Settings.from_env({**VALID, "SECRET_KEY": secret, "QUART_ENV": "production"})
    development = Settings.from_env({**VALID, "SECRET_KEY": secret, "QUART_ENV": "development"})
    assert not development.is_production


def test_server_start_stops_with_one_line_naming_the_variable() -> None:
    # An empty variable in the environment wins over .quartenv: as good as missing.
    env = {**os.environ, "DB_HOST": ""}
    result = subprocess.run(
        [sys.executable, "-c", "import manage"],
        cwd=WEB_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "counter: configuration error: "
        "DB_HOST is not set: add it to the environment or to .quartenv"
    )


def test_every_setting_round_trips_through_its_variable() -> None:
    settings = Settings.from_env({**VALID, "QUART_DEBUG": "1", "QUART_ENV": "development"})
    assert Settings.from_env(settings.to_env()) == settings
    assert set(settings.to_env()) >= set(VALID)


def test_secrets_are_kept_exactly_as_given() -> None:
    settings = Settings.from_env({**VALID, "DB_PASSWORD": "  spaced  "})
    assert settings.db_password == "  spaced  "


def test_secrets_can_come_from_files(tmp_path: Path) -> None:
    key, password = tmp_path / "key", tmp_path / "password"
    key.write_text("a-long-enough-secret-from-a-file\n")
    password.write_text("from file")
    environ = {k: v for k, v in VALID.items() if k not in ("SECRET_KEY", "DB_PASSWORD")}
    settings = Settings.from_env(
        {**environ, "SECRET_KEY_FILE": str(key), "DB_PASSWORD_FILE": str(password)}
    )
    assert (settings.secret_key, settings.db_password) == (
        "a-long-enough-secret-from-a-file",
        "from file",
    )
    with pytest.raises(SettingsError, match=r"^DB_PASSWORD and DB_PASSWORD_FILE are both set"):
        Settings.from_env({**VALID, "DB_PASSWORD_FILE": str(password)})
    with pytest.raises(SettingsError, match=r"^SECRET_KEY_FILE='/nonexistent' cannot be read"):
        Settings.from_env({**environ, "SECRET_KEY_FILE": "/nonexistent", "DB_PASSWORD": "x"})


def test_an_invalid_secret_is_not_echoed() -> None:
    with pytest.raises(SettingsError) as raised:
        Settings.from_env({**VALID, "SECRET_KEY": "short-secret", "QUART_ENV": "production"})
    assert "short-secret" not in str(raised.value)


@pytest.mark.parametrize("bind", ["nonsense::", "127.0.0.1:99999", "256.0.0.1:80"])
def test_a_bad_bind_address_stops_start_up_in_one_line(bind: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "counter.preflight"],
        cwd=WEB_DIR,
        env={**os.environ, "WEB_BIND": bind},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("counter: WEB_BIND cannot be used: ")
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
