"""Settings: every missing or malformed variable is refused with a message that names it."""

import os
import re
import runpy
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


def test_reads_and_casts_the_environment_and_escapes_the_password_in_the_url() -> None:
    settings = Settings.from_env({**VALID, "DB_PORT": "3307", "DB_POOL_SIZE": "4"})
    assert (settings.db_port, settings.db_pool_size, settings.is_production) == (3307, 4, True)
    url = settings.database_url()
    assert (url.password, url.host) == ("p@ss/w%rd", "db.internal")
    assert "p%40ss%2Fw%25rd" in url.render_as_string(hide_password=False)


@pytest.mark.parametrize("name", [*VALID])
def test_missing_variable_is_named(name: str) -> None:
    with pytest.raises(SettingsError, match=f"^{name} is not set"):
        Settings.from_env({k: v for k, v in VALID.items() if k != name})


@pytest.mark.parametrize(
    "assignment",
    ["DB_PORT=x", "DB_PORT=70000", "QUART_ENV=prod", "DB_QUERY_TIMEOUT=inf", "DB_QUERY_TIMEOUT=2"],
)
def test_malformed_variable_is_named(assignment: str) -> None:
    name, value = assignment.split("=")
    with pytest.raises(SettingsError, match=f"^{name}='{value}' is invalid"):
        Settings.from_env({**VALID, name: value})


@pytest.mark.parametrize("secret", [DEVELOPMENT_SECRET_KEY, "short-secret"])
def test_production_refuses_placeholder_or_short_secret_without_echoing_it(secret: str) -> None:
    with pytest.raises(SettingsError, match=r"^SECRET_KEY is the development placeholder") as err:
        Settings.from_env({**VALID, "SECRET_KEY": secret, "QUART_ENV": "production"})
    assert "short-secret" not in str(err.value)
    development = Settings.from_env({**VALID, "SECRET_KEY": secret, "QUART_ENV": "development"})
    assert not development.is_production


def test_every_setting_round_trips_through_its_variable_and_secrets_stay_as_given() -> None:
    settings = Settings.from_env({**VALID, "QUART_DEBUG": "1", "QUART_ENV": "development"})
    assert Settings.from_env(settings.to_env()) == settings
    assert Settings.from_env({**VALID, "DB_PASSWORD": "  spaced  "}).db_password == "  spaced  "


def test_secrets_can_come_from_files(tmp_path: Path) -> None:
    key, password = tmp_path / "key", tmp_path / "password"
    key.write_text("a-long-enough-secret-from-a-file\n")
    password.write_text("from file")
    environ = {k: v for k, v in VALID.items() if k not in ("SECRET_KEY", "DB_PASSWORD")}
    environ |= {"SECRET_KEY_FILE": str(key), "DB_PASSWORD_FILE": str(password)}
    settings = Settings.from_env(environ)
    assert settings.secret_key == "a-long-enough-secret-from-a-file"
    assert settings.db_password == "from file"
    with pytest.raises(SettingsError, match=r"^DB_PASSWORD and DB_PASSWORD_FILE are both set"):
        Settings.from_env({**environ, "DB_PASSWORD": "x"})
    with pytest.raises(SettingsError, match=r"^SECRET_KEY_FILE='/nonexistent' cannot be read"):
        Settings.from_env({**environ, "SECRET_KEY_FILE": "/nonexistent"})


def test_manage_py_names_a_missing_variable_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_HOST", "")  # it wins over .quartenv's, so it is as good as missing
    message = "DB_HOST is not set: add it to the environment or to .quartenv"
    with pytest.raises(SystemExit) as stopped:
        runpy.run_path(str(WEB_DIR / "manage.py"))
    assert str(stopped.value) == f"counter: configuration error: {message}"


@pytest.mark.parametrize("bind", ["nonsense::", "127.0.0.1:99999", "256.0.0.1:80"])
def test_preflight_stops_with_one_line_naming_an_unusable_web_bind(bind: str) -> None:
    preflight = [sys.executable, "-m", "counter.preflight"]
    env = {**os.environ, "WEB_BIND": bind}
    run = subprocess.run(
        preflight, cwd=WEB_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 1, run.stderr
    assert re.fullmatch("counter: WEB_BIND cannot be used: .+", run.stderr.strip()), run.stderr
