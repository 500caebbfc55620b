"""The harness: `make local-db` where root is refused (its other paths run on every
`make local-test`, .ci/run's too), and one tool's exit never kills another's server."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pymysql
import pytest
from dotenv import dotenv_values

from counter.config import Settings
from harness.mariadb import MariaDB
from harness.provision import WEB_DIR, on_local_port, root_connection
from harness.tools import free_port, require_tool

pytestmark = pytest.mark.processes


def run(local_dir: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    """`python args` in web/ on the server at 127.0.0.1:`port`, with .local/ in `local_dir`."""
    env = dict(os.environ, DB_HOST="127.0.0.1", DB_PORT=str(port), COUNTER_LOCAL_DIR=str(local_dir))
    command = [sys.executable, *args]
    return subprocess.run(command, cwd=WEB_DIR, env=env, capture_output=True, text=True, timeout=90)


def test_refused_root_stops_the_tests_and_local_db_starts_the_private_server(
    private_datadir: Path, tmp_path: Path, server_settings: Settings
) -> None:
    # .local/ as the old db/local_server.py left it: root@localhost with the password, no TCP root.
    local_dir = tmp_path / "local"
    old = MariaDB(local_dir / "mysql", free_port()).copy_data(private_datadir)
    old.start()
    old.execute("DROP USER 'root'@'127.0.0.1'")
    password = os.environ["MYSQL_ROOT_PASSWORD"]
    old.execute("ALTER USER 'root'@'localhost' IDENTIFIED BY %s", (password,))
    old.stop()
    port = free_port()
    debian = MariaDB(tmp_path / "debian", port, options=()).copy_data(private_datadir)
    debian.start()  # without --skip-name-resolve: 127.0.0.1 is localhost, as on Debian
    debian.execute("DROP USER 'root'@'127.0.0.1'")  # root@localhost: unix socket only
    try:
        started = time.monotonic()
        tests = run(
            local_dir, port, "-m", "pytest", "-p", "no:cacheprovider", "tests/test_views.py"
        )
        assert time.monotonic() - started < 30  # 94 s before, one failure per test
        assert tests.returncode == 3, tests  # pytest.exit's: no test ran
        assert tests.stdout.count("'root' cannot log in on 127.0.0.1") == 1, tests.stdout

        result = run(local_dir, port, "-m", "harness.localdb", "ensure")
        assert result.returncode == 0, result
        private = int(dotenv_values(local_dir / "quartenv")["DB_PORT"] or 0)
        # 1698 as on Debian; 1130 where 127.0.0.1 does not resolve to localhost.
        line = (
            rf"root cannot log in on 127.0.0.1:{port} \((1698|1130)\): the project's private "
            rf"MariaDB serves on 127.0.0.1:{private} \(DB_PORT={private} written"
        )
        assert re.search(line, result.stdout), result.stdout
        root_connection(on_local_port(server_settings, private)).close()  # root over TCP
        user, secret = server_settings.db_username, server_settings.db_password  # the app's
        pymysql.connect(host="127.0.0.1", port=private, user=user, password=secret).close()
    finally:
        stopped = run(local_dir, port, "-m", "harness.localdb", "stop")
        debian.stop()
    assert "stopped the private server" in stopped.stdout, stopped


# In a PID namespace, as in a container: small pids, as make test's container has.
SCRIPT = """
import subprocess, sys
from mirakuru import SimpleExecutor
import harness
server = SimpleExecutor(["sleep", "30"]).start()
for _ in range(10):  # tools that use the harness come and go, as in a test run
    subprocess.run([sys.executable, "-c", "import harness.mariadb"], check=True)
print("alive" if server.running() else "killed")
server.stop()
"""


def test_an_exiting_tool_leaves_other_processes_servers_alone() -> None:
    as_user = [] if os.geteuid() == 0 else ["--map-root-user"]  # a user namespace, where allowed
    command = [require_tool("unshare"), *as_user, "--pid", "--fork", "--mount-proc"]
    command += [sys.executable, "-c", SCRIPT]
    result = subprocess.run(command, cwd=WEB_DIR, capture_output=True, text=True, timeout=60)
    if "Operation not permitted" in result.stderr:  # e.g. a CI runner's user, without root
        pytest.skip(f"no PID namespace here: {result.stderr.strip()}")
    assert result.stdout.strip() == "alive", result
