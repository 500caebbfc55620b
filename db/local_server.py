"""Host mode without Docker: make sure a MySQL/MariaDB server answers on DB_HOST:DB_PORT.

If one already answers, it is used as it is. Otherwise, when `mariadbd` (or MySQL's `mysqld`) is
installed, a private server for this project is initialised under .local/mysql/ (git-ignored), with
the root password and the app's database and account from .quartenv, listening on loopback only.
Usage: python db/local_server.py ensure|stop|status
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pymysql
from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / ".local" / "mysql"
DATADIR = STATE / "data"
SOCKET = STATE / "mysqld.sock"
PIDFILE = STATE / "mysqld.pid"
LOG = STATE / "server.log"
START_TIMEOUT = 60
# SQL with its arguments, run in order.
Statements = list[tuple[str, tuple[str, ...]]]


def settings() -> dict[str, str]:
    """.quartenv's values, the shell's own variables winning, as python-dotenv does for the app."""
    values = {k: v or "" for k, v in dotenv_values(ROOT / ".quartenv").items()}
    values.update(os.environ)
    return values


def say(message: str) -> None:
    print(f"[local-db] {message}", flush=True)


def answers(host: str, port: int) -> bool:
    """True when something accepts TCP connections there."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def server_binary() -> str | None:
    return (
        shutil.which("mariadbd") or shutil.which("mysqld") or _sbin("mariadbd") or _sbin("mysqld")
    )


def _sbin(name: str) -> str | None:
    path = Path("/usr/sbin") / name
    return str(path) if path.exists() else None


def is_mariadb(binary: str) -> bool:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    return "mariadb" in out.lower()


def initialise(binary: str) -> None:
    """Create an empty data directory, where root logs in over our socket with no password."""
    say(f"initialising a private server in {DATADIR.relative_to(ROOT)}")
    DATADIR.mkdir(parents=True)
    user = ["--user", getpass.getuser()]
    if is_mariadb(binary):
        installer = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
        if installer is None:
            sys.exit("[local-db] mariadb-install-db not found: install the mariadb-server package")
        command = [
            installer,
            "--no-defaults",
            f"--datadir={DATADIR}",
            "--skip-test-db",
            "--auth-root-authentication-method=normal",
            *user,
        ]
    else:
        command = [binary, "--no-defaults", "--initialize-insecure", f"--datadir={DATADIR}", *user]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        shutil.rmtree(DATADIR, ignore_errors=True)
        sys.exit(f"[local-db] initialising failed:\n{result.stdout}{result.stderr}")


def start(binary: str, port: int) -> None:
    """Run the server in the background on 127.0.0.1:port, logging to .local/mysql/server.log."""
    command = [
        binary,
        "--no-defaults",
        f"--datadir={DATADIR}",
        f"--socket={SOCKET}",
        f"--pid-file={PIDFILE}",
        f"--log-error={LOG}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        "--user",
        getpass.getuser(),
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_unicode_ci",
        # Room for the benchmarks' and tests' concurrent pools.
        "--max-connections=500",
    ]
    if not is_mariadb(binary):
        command.append("--mysqlx=OFF")
    say(f"starting {Path(binary).name} on 127.0.0.1:{port} (log: {LOG.relative_to(ROOT)})")
    with open(os.devnull, "rb") as stdin, open(LOG, "ab") as log:
        subprocess.Popen(command, stdin=stdin, stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT
    while not (SOCKET.exists() and answers("127.0.0.1", port)):
        if time.monotonic() > deadline:
            sys.exit(f"[local-db] the server did not start in {START_TIMEOUT} s; see {LOG}")
        time.sleep(0.2)


def app_statements(env: dict[str, str]) -> Statements:
    """The app's database and its account with rights on it only, as the MySQL image makes them."""
    user, password, database = env["DB_USERNAME"], env["DB_PASSWORD"], env["DATABASE_NAME"]
    return [
        (f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET utf8mb4", ()),
        ("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (user, password)),
        (f"GRANT ALL ON `{database}`.* TO %s@'%%'", (user,)),
    ]


def run_statements(conn: pymysql.Connection, statements: Statements) -> None:
    """Run each statement with its arguments, then close the connection."""
    with conn.cursor() as cur:
        for statement, args in statements:
            cur.execute(statement, args or None)
    conn.close()


def configure(env: dict[str, str]) -> None:
    """Give root the .quartenv password (over TCP from loopback too), then create the app's part."""
    root_password = env["MYSQL_ROOT_PASSWORD"]
    conn = pymysql.connect(unix_socket=str(SOCKET), user="root", password="")
    run_statements(conn, [
        ("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY %s", (root_password,)),
        ("GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION", ()),
        *app_statements(env),
        ("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (root_password,)),
    ])  # fmt: skip
    say(f"root password, database {env['DATABASE_NAME']!r} and account "
        f"{env['DB_USERNAME']!r} set from .quartenv")  # fmt: skip


def provision_existing(env: dict[str, str], host: str, port: int) -> None:
    """On a server we did not start: create the app's database and account if root lets us in."""
    try:
        conn = pymysql.connect(host=host, port=port, user=env.get("MYSQL_ROOT_USER") or "root",
                               password=env.get("MYSQL_ROOT_PASSWORD", ""))  # fmt: skip
    except pymysql.err.OperationalError as err:
        say(f"root cannot log in there ({err.args[-1]}): the app's database and account must "
            "exist already, and the tests need MYSQL_ROOT_PASSWORD (and MYSQL_ROOT_USER) for an "
            "account that may create databases. See README, Troubleshooting.")  # fmt: skip
        return
    run_statements(conn, app_statements(env))
    say(f"database {env['DATABASE_NAME']!r} and account {env['DB_USERNAME']!r} are in place")


def ensure() -> None:
    env = settings()
    host, port = env.get("DB_HOST", "127.0.0.1"), int(env.get("DB_PORT") or 3306)
    if answers(host, port):
        say(f"a database server answers on {host}:{port}; using it")
        provision_existing(env, host, port)
        return
    binary = server_binary()
    if host not in ("127.0.0.1", "localhost") or binary is None:
        sys.exit(
            f"[local-db] nothing answers on {host}:{port}, and no mariadbd/mysqld is installed to "
            "start one here: install mariadb-server (or MySQL), or point DB_HOST/DB_PORT at one"
        )
    fresh = not (DATADIR / "mysql").exists()
    if fresh:
        shutil.rmtree(DATADIR, ignore_errors=True)
        initialise(binary)
    start(binary, port)
    if fresh:
        configure(env)
    say(f"ready on 127.0.0.1:{port}; stop it with `make local-db-stop`")


def stop() -> None:
    if not PIDFILE.exists():
        say("the private server is not running")
        return
    pid = int(PIDFILE.read_text().strip())
    say(f"stopping the private server (pid {pid})")
    try:
        os.kill(pid, 15)
    except ProcessLookupError:
        PIDFILE.unlink(missing_ok=True)
        return
    for _ in range(300):
        if not PIDFILE.exists():
            return
        time.sleep(0.1)
    sys.exit("[local-db] the server did not stop within 30 s")


def status() -> None:
    env = settings()
    host, port = env.get("DB_HOST", "127.0.0.1"), int(env.get("DB_PORT") or 3306)
    running = PIDFILE.exists()
    say(
        f"{host}:{port} {'answers' if answers(host, port) else 'does not answer'}; "
        f"private server {'running' if running else 'stopped'}"
    )


if __name__ == "__main__":
    commands = {"ensure": ensure, "stop": stop, "status": status}
    if len(sys.argv) != 2 or sys.argv[1] not in commands:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(commands)}")
    commands[sys.argv[1]]()
