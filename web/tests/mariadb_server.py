"""A private MariaDB for fault tests: its own temp data dir and free port, stoppable, removed.

`private_mariadb()` initialises a data directory, starts `mariadbd` on 127.0.0.1, gives root the
password the test utility uses (MYSQL_ROOT_PASSWORD) and yields a `MariaDB` whose `stop()`,
`start()`, `freeze()` and `thaw()` simulate an outage, a restart and a hung server.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymysql

from counter.config import Settings
from dbutil import create_app_database, migrate, throwaway_name
from servers import free_port, require_tool

START_TIMEOUT = 30.0
STOP_TIMEOUT = 20.0


class MariaDB:
    """One mariadbd on 127.0.0.1:`port` over `root`/data; root may use the Unix socket freely."""

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port
        self.socket = root / "mysqld.sock"
        self.log_path = root / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> None:
        """Run the server; with `wait`, return once root can log in over the socket."""
        assert self.process is None, "already running"
        self.socket.unlink(missing_ok=True)  # a stale one (after kill) would pass for ready
        command = [
            require_tool("mariadbd"),
            "--no-defaults",
            f"--datadir={self.root / 'data'}",
            f"--socket={self.socket}",
            f"--pid-file={self.root / 'mysqld.pid'}",
            f"--log-error={self.log_path}",
            f"--port={self.port}",
            "--bind-address=127.0.0.1",
            "--user=" + _user(),
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=16M",
            "--character-set-server=utf8mb4",
        ]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
        if wait:
            self.wait_ready()

    def wait_ready(self) -> None:
        """Poll until root logs in; fail with the server's log if it dies or takes too long."""
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mariadbd exited with {self.process.returncode}:\n{self.log()}")
            # pymysql leaks its socket when connect() fails, so only try once the server listens.
            if self.socket.exists():
                try:
                    self.root_connection().close()
                    return
                except pymysql.err.OperationalError:
                    pass
            time.sleep(0.1)
        raise TimeoutError(f"mariadbd did not start within {START_TIMEOUT} s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: a crash; InnoDB recovers committed transactions on the next start."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), as a restart or a maintenance stop does."""
        if self.process is None:
            return
        self.thaw()
        self.process.terminate()
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and accepted, but nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: the frozen server carries on where it stopped."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def root_connection(self) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
        """Root over the Unix socket (no password), autocommit."""
        return pymysql.connect(unix_socket=str(self.socket), user="root", autocommit=True)

    def execute(self, statement: str, args: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        """Run one statement as root, e.g. SET GLOBAL wait_timeout = 2; its rows."""
        conn = self.root_connection()
        try:
            with conn.cursor() as cur:
                cur.execute(statement, args or None)
                return list(cur.fetchall())
        finally:
            conn.close()

    def app_database(self, base: Settings) -> Settings:
        """Create a `_test` database and the app's account with rights on it only; its settings."""
        settings = dataclasses.replace(
            self.settings(base), database_name=throwaway_name(base.database_name)
        )
        conn = self.root_connection()
        try:
            with conn.cursor() as cur:
                create_app_database(cur, settings, settings.database_name)
        finally:
            conn.close()
        return settings

    def migrated_database(self, base: Settings) -> Settings:
        """`app_database`, migrated to head."""
        settings = self.app_database(base)
        migrate(settings)
        return settings

    def status(self, name: str) -> int:
        """A global status counter, e.g. Aborted_clients."""
        rows = self.execute("SHOW GLOBAL STATUS LIKE %s", (name,))
        return int(str(rows[0][1]))

    def stored_count(self, settings: Settings) -> int:
        """The counter row's value in `settings`' database."""
        rows = self.execute(f"SELECT count FROM `{settings.database_name}`.counter")  # noqa: S608
        assert len(rows) == 1, rows
        return int(str(rows[0][0]))

    def settings(self, base: Settings) -> Settings:
        """`base` pointed at this server."""
        return dataclasses.replace(base, db_host="127.0.0.1", db_port=self.port)

    def log(self) -> str:
        """The server's error log so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@contextmanager
def private_mariadb(started: bool = True) -> Iterator[MariaDB]:
    """A fresh server on a free port, root reachable over TCP with MYSQL_ROOT_PASSWORD; removed."""
    root = Path(tempfile.mkdtemp(prefix="mariadb-"))
    server = MariaDB(root, free_port())
    try:
        subprocess.run(
            [
                require_tool("mariadb-install-db"),
                "--no-defaults",
                f"--datadir={root / 'data'}",
                "--skip-test-db",
                "--auth-root-authentication-method=normal",
                "--user=" + _user(),
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        server.start()
        password = os.environ.get("MYSQL_ROOT_PASSWORD", "")
        server.execute("CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'")
        server.execute("ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY %s", (password,))
        server.execute("GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")
        if not started:
            server.stop()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name
