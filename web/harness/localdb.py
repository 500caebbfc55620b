"""`make local-db` (`python -m harness.localdb ensure|stop`): DB_HOST:DB_PORT if root logs in
there, else (nothing answers, root is refused) the project's private MariaDB under .local/mysql/,
its port in .local/quartenv when that differs. COUNTER_LOCAL_DIR moves .local/ (the tests do)."""

import os
import sys
from pathlib import Path

import psutil
import pymysql
from dotenv import load_dotenv, set_key

from counter.config import LOCAL_ENV_FILE, Settings, load_quartenv
from harness.mariadb import MariaDB
from harness.provision import RootAccessError, create_app_database, root_connection
from harness.tools import MissingToolError, free_port

LOCAL_DIR = Path(os.environ.get("COUNTER_LOCAL_DIR") or LOCAL_ENV_FILE.parent)
ENV_FILE = LOCAL_DIR / LOCAL_ENV_FILE.name
SERVER = LOCAL_DIR / "mysql"
PORT_FILE, PID_FILE = SERVER / "port", SERVER / "mysqld.pid"
SHELL_DB_PORT = os.environ.get("DB_PORT")  # before any env file is loaded: it wins over them


def say(message: str) -> None:
    """One line on stdout, marked as this tool's."""
    print(f"[local-db] {message}", flush=True)


def running_port() -> int | None:
    """The private server's port when it is running, else None."""
    try:
        os.kill(int(PID_FILE.read_text()), 0)
        return int(PORT_FILE.read_text())
    except (OSError, ValueError):
        return None


def ensure() -> None:
    """Make sure root can create the app's database on the configured or the private server."""
    load_dotenv(ENV_FILE, override=False)
    load_quartenv()
    settings = Settings.from_env({**os.environ, "QUART_ENV": "development"})
    where = f"{settings.db_host}:{settings.db_port}"
    try:
        create_app_database(root_connection(settings, timeout=3), settings)
        say(f"root logs in on {where}; database {settings.database_name!r} and its account ready")
        return
    except RootAccessError as err:
        refused, reason = True, f"root cannot log in on {where} ({err.code})"
    except pymysql.err.OperationalError as err:
        if err.args[0] != 2003:  # pymysql's "Can't connect": no TCP connection was made
            sys.exit(f"[local-db] {where} answers, but: {err.args[1]} ({err.args[0]})")
        refused, reason = False, f"nothing answers on {where} ({err.args[0]})"
    if settings.db_host not in ("127.0.0.1", "localhost"):
        sys.exit(f"[local-db] {reason}, and it is not this machine: fix DB_HOST/DB_PORT")
    running = running_port()
    port = running or (free_port() if refused else settings.db_port)
    server = MariaDB(SERVER, port)
    if running is None:
        if not (server.datadir / "mysql").is_dir():
            say(f"initialising the project's private server in {SERVER}")
            server.initialise()
        server.start()
        PORT_FILE.write_text(f"{port}\n")
        server.detach()
    password = os.environ.get("MYSQL_ROOT_PASSWORD", "")
    server.allow_root_over_tcp(password)
    create_app_database(server.root(password), settings)
    written = ""
    if port != settings.db_port:
        ENV_FILE.parent.mkdir(parents=True, exist_ok=True)
        set_key(ENV_FILE, "DB_PORT", str(port), quote_mode="never")
        written = f" (DB_PORT={port} written to {ENV_FILE})"
        if SHELL_DB_PORT:
            written += "; unset DB_PORT in your shell, which wins over that file"
    say(f"{reason}: the project's private MariaDB serves on 127.0.0.1:{port}{written}")


def stop() -> None:
    """Stop the private server (SIGTERM) and wait until it has shut down."""
    port = running_port()
    if port is None:
        say("the private server is not running")
        return
    server = psutil.Process(int(PID_FILE.read_text()))
    server.terminate()
    server.wait(60)
    say(f"stopped the private server (pid {server.pid}, port {port})")


if __name__ == "__main__":
    commands = {"ensure": ensure, "stop": stop}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: python -m harness.localdb {'|'.join(commands)}")
    try:
        commands[sys.argv[1]]()
    except (MissingToolError, RuntimeError, psutil.Error) as err:  # e.g. no MariaDB installed
        sys.exit(f"[local-db] {err}")
