"""The one MariaDB launcher: mariadbd on 127.0.0.1:port, its files under one folder, its faults."""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

import mirakuru
import pymysql

from harness import kill_own_leftovers
from harness.tools import find_tool

USER = pwd.getpwuid(os.getuid()).pw_name  # root's account on the socket, as on Debian
OPTIONS = ("--skip-name-resolve",)  # the grants name 127.0.0.1, never a host name


class MariaDB:
    """One mariadbd whose data, socket, pid file and log all live under `home`."""

    def __init__(self, home: Path, port: int, options: Sequence[str] = OPTIONS) -> None:
        self.home, self.port = home, port
        self.datadir, self.socket = home / "data", home / "mysqld.sock"
        self.log_path = home / "server.log"
        self._executor = mirakuru.TCPExecutor(
            self._command("mariadbd", f"--socket={self.socket}", f"--log-error={self.log_path}",
                          f"--pid-file={home / 'mysqld.pid'}", f"--port={port}",
                          "--bind-address=127.0.0.1", "--character-set-server=utf8mb4",
                          "--collation-server=utf8mb4_unicode_ci", "--max-connections=500",
                          *options),
            host="127.0.0.1", port=port, timeout=30, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def initialise(self) -> None:
        """Create the system tables; root logs in by unix socket only, as on Debian."""
        self.datadir.mkdir(parents=True, exist_ok=True)
        command = self._command(
            "mariadb-install-db", "--skip-test-db", "--auth-root-authentication-method=socket"
        )
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed:\n{done.stdout}{done.stderr}")

    def copy_data(self, datadir: Path) -> MariaDB:
        """Take a copy of another (stopped) server's data: faster than initialising anew."""
        shutil.copytree(datadir, self.datadir)
        return self

    def start(self) -> None:
        """Run mariadbd and return once it accepts TCP connections; its log if it fails."""
        self.socket.unlink(missing_ok=True)  # a stale one (after a kill) would pass for ready
        try:
            self._executor.start()
        except (mirakuru.ProcessExitedWithError, mirakuru.TimeoutExpired) as err:
            log = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
            raise RuntimeError(f"mariadbd did not start ({err}):\n{log}") from None

    def stop(self) -> None:
        """A clean shutdown (SIGTERM), as a restart or maintenance does; a no-op when stopped."""
        self.thaw()
        self._executor.stop()

    def kill(self) -> None:
        """SIGKILL: a crash; InnoDB recovers committed transactions on the next start."""
        self._executor.kill()

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and are accepted, but nothing answers."""
        self._signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: a frozen server carries on where it stopped."""
        self._signal(signal.SIGCONT)

    def detach(self) -> None:
        """Leave the server running after this Python process ends (stopped later by pid file)."""
        atexit.unregister(kill_own_leftovers)  # which would kill what this process started
        self._executor.process = None

    def root(self, password: str = "") -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
        """Root (the OS user's account) by socket, autocommit; socket-only ignores `password`."""
        return pymysql.connect(
            unix_socket=str(self.socket), user=USER, password=password, autocommit=True
        )

    def allow_root_over_tcp(self, password: str) -> None:
        """Root from 127.0.0.1 with `password` (which the old db/local_server.py gave root too)."""
        with self.root(password) as conn, conn.cursor() as cur:
            cur.execute("CREATE OR REPLACE USER 'root'@'127.0.0.1' IDENTIFIED BY %s", (password,))
            cur.execute("GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION")

    def execute(self, statement: str, args: Sequence[object] = ()) -> list[tuple[object, ...]]:
        """Run one statement as root (e.g. SET GLOBAL wait_timeout = 2); its rows."""
        with self.root() as conn, conn.cursor() as cur:
            cur.execute(statement, tuple(args) or None)
            return list(cur.fetchall())

    def status(self, name: str) -> int:
        """A global status counter, e.g. Aborted_clients."""
        return int(str(self.execute("SHOW GLOBAL STATUS LIKE %s", (name,))[0][1]))

    def _signal(self, number: int) -> None:
        if self._executor.process is not None:
            self._executor.process.send_signal(number)

    def _command(self, tool: str, *args: str) -> list[str]:
        # Its own tmpdir: servers set up side by side (pytest -n) share none of their temp files.
        return [find_tool(tool), "--no-defaults", f"--datadir={self.datadir}", f"--user={USER}",
                f"--tmpdir={self.home}", *args]  # fmt: skip
