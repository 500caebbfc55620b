"""The one MariaDB launcher: a data directory, mariadbd on 127.0.0.1:port, and its faults.

Used by `python -m harness.localdb` (the project's private server under .local/) and by the fault
tests (a throwaway server to stop, kill, freeze and thaw). Root logs in over the Unix socket.
"""

from __future__ import annotations

import atexit
import os
import pwd
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

import mirakuru
import pymysql
from mirakuru.base import cleanup_subprocesses

from harness.tools import find_tool

START_TIMEOUT = 30.0  # mirakuru bounds a start and a stop (then SIGKILL) with it
Row = tuple[object, ...]


class MariaDB:
    """One mariadbd whose files (data, socket, pid, log) all live under `home`."""

    def __init__(
        self, home: Path, port: int, options: Sequence[str] = ("--skip-name-resolve",)
    ) -> None:
        self.home, self.port = home, port
        self.datadir = home / "data"
        self.socket = home / "mysqld.sock"
        self.pidfile = home / "mysqld.pid"
        self.log_path = home / "server.log"
        self.options = list(options)
        self._executor: mirakuru.TCPExecutor | None = None

    @property
    def initialised(self) -> bool:
        """True once the data directory holds the system tables."""
        return (self.datadir / "mysql").is_dir()

    def initialise(self) -> None:
        """Create the system tables. As in Debian's package, root@localhost (and the OS user
        running this) log in by unix_socket auth only: over TCP, as root@127.0.0.1, once
        provision.root_over_tcp_statements made that account (skip-name-resolve keeps them apart).
        """
        self.datadir.mkdir(parents=True, exist_ok=True)
        command = [
            find_tool("mariadb-install-db"), "--no-defaults", f"--datadir={self.datadir}",
            "--skip-test-db", "--auth-root-authentication-method=socket", f"--user={_user()}",
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed:\n{result.stdout}{result.stderr}")

    def start(self) -> None:
        """Run mariadbd and return once it accepts TCP connections; its log if it fails."""
        self.socket.unlink(missing_ok=True)  # a stale one (after a kill) would pass for ready
        command = [
            find_tool("mariadbd"), "--no-defaults", f"--datadir={self.datadir}",
            f"--socket={self.socket}", f"--pid-file={self.pidfile}", f"--log-error={self.log_path}",
            f"--port={self.port}", "--bind-address=127.0.0.1", f"--user={_user()}",
            "--character-set-server=utf8mb4", "--collation-server=utf8mb4_unicode_ci",
            "--max-connections=500", *self.options,
        ]  # fmt: skip
        self._executor = mirakuru.TCPExecutor(
            command, host="127.0.0.1", port=self.port, timeout=START_TIMEOUT,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            self._executor.start()
        except (mirakuru.ProcessExitedWithError, mirakuru.TimeoutExpired) as err:
            self._executor = None
            raise RuntimeError(f"mariadbd did not start ({err}):\n{self.log()}") from None

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), as a restart or maintenance does; a no-op when stopped."""
        if self._executor is not None:
            self.thaw()
            self._executor.stop()
            self._executor = None

    def kill(self) -> None:
        """SIGKILL: a crash; InnoDB recovers committed transactions on the next start."""
        if self._executor is not None:
            self._executor.kill()
            self._executor = None

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and are accepted, but nothing answers."""
        os.kill(self.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: a frozen server carries on where it stopped."""
        if self._executor is not None:
            os.kill(self.pid, signal.SIGCONT)

    def detach(self) -> None:
        """Leave the server running after this Python process ends (stopped later by pid file)."""
        # mirakuru kills what it started at interpreter exit and on garbage collection.
        atexit.unregister(cleanup_subprocesses)
        if self._executor is not None:
            self._executor.process = None
            self._executor = None

    @property
    def pid(self) -> int:
        """The running server's process id."""
        process = self._executor.process if self._executor else None
        assert process is not None, "not running"
        return process.pid

    def root(self, password: str = "") -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
        """Root (the OS user's account) over the Unix socket, autocommit."""
        return pymysql.connect(
            unix_socket=str(self.socket), user=_user(), password=password, autocommit=True
        )

    def execute(self, statement: str, args: Sequence[object] = ()) -> list[Row]:
        """Run one statement as root (e.g. SET GLOBAL wait_timeout = 2); its rows."""
        conn = self.root()
        try:
            with conn.cursor() as cur:
                cur.execute(statement, tuple(args) or None)
                return list(cur.fetchall())
        finally:
            conn.close()

    def status(self, name: str) -> int:
        """A global status counter, e.g. Aborted_clients."""
        return int(str(self.execute("SHOW GLOBAL STATUS LIKE %s", (name,))[0][1]))

    def log(self) -> str:
        """The server's error log so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def _user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name
