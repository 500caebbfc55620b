"""`make bench`: wrk on the counter, direct and through nginx, correctness checked after every run.

Starts (or reuses) a MySQL/MariaDB server, migrates a fresh throwaway database, runs Hypercorn
exactly as production does (hypercorn_conf.py, a worker per core, QUART_ENV=production) and nginx
from the project's template, runs wrk for a bounded time per endpoint and connection count, and
prints one markdown table (also written to bench/results/latest.md). It stops all it started.
Tuning: BENCH_SECONDS per run (default 5), BENCH_CONNECTIONS (default "8,64,256").
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import sys
from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent.parent
# The benchmark reuses the test utilities: throwaway databases, Hypercorn and nginx runners.
sys.path.insert(0, str(WEB_DIR / "tests"))

from bench.exact_load import exact_load  # noqa: E402
from bench.load import Run, measure, settled_count, wrk  # noqa: E402
from bench.machine import describe_machine  # noqa: E402
from bench.procstat import rss_mb, unique_mb, worker_pids  # noqa: E402
from bench.report import Exact, table, verdicts  # noqa: E402
from counter.config import Settings, load_quartenv  # noqa: E402
from dbutil import migrate, throwaway_database, throwaway_name  # noqa: E402
from nginx_runner import run_nginx  # noqa: E402
from servers import run_hypercorn  # noqa: E402

RESULTS = Path(__file__).with_name("results")
ENDPOINTS = [("GET", "/"), ("GET", "/api/counter"), ("POST", "/api/counter"), ("GET", "/healthz")]
EXACT_REQUESTS = 5000


def progress(run: Run) -> None:
    print(f"  {run.target:6} {run.method:4} {run.path:13} c={run.connections:<3} "
          f"{run.rps:8,.0f} req/s", file=sys.stderr, flush=True)  # fmt: skip


def main() -> int:
    """Run the whole benchmark; print and save the report."""
    missing = [tool for tool in ("wrk", "nginx") if shutil.which(tool) is None]
    if missing:
        print(f"bench: needs {' and '.join(missing)} (Debian: apt-get install wrk nginx)",
              file=sys.stderr)  # fmt: skip
        return 2
    seconds = int(os.environ.get("BENCH_SECONDS", "5"))
    connections = [int(c) for c in os.environ.get("BENCH_CONNECTIONS", "8,64,256").split(",")]
    load_quartenv()
    base = dataclasses.replace(Settings.from_env(), environment="development")
    runs: list[Run] = []
    with throwaway_database(base, throwaway_name(base.database_name)) as settings:
        migrate(settings)
        production = dataclasses.replace(
            settings, environment="production", secret_key=secrets.token_urlsafe(32)
        )
        with run_hypercorn(production, workers=os.cpu_count() or 1) as web:
            workers = worker_pids(web.process.pid)
            with run_nginx(web.url.removeprefix("http://"), production=True) as proxy:
                for target, url in (("direct", web.url), ("nginx", proxy.url)):
                    wrk(url + "/", "GET", 64, 2)  # warm-up: pools filled, code paths hot
                    for method, path in ENDPOINTS:
                        for c in connections:
                            runs.append(measure(target, url, method, path, c, seconds,
                                                settings, workers))  # fmt: skip
                            progress(runs[-1])
                before = settled_count(settings)
                result = exact_load(proxy.url, "/api/counter", EXACT_REQUESTS, 64)
                exact = Exact(EXACT_REQUESTS, result.ok, settled_count(settings) - before,
                              len(set(result.values)))  # fmt: skip
            rss = [rss_mb(pid) for pid in workers]
            unique = [unique_mb(pid) for pid in workers]
        machine = describe_machine(settings)
    report = "\n".join([
        f"## make bench: {machine}", "",
        f"wrk -t1, {seconds} s per run; Hypercorn with {len(workers)} workers (uvloop), "
        "QUART_ENV=production; nginx from nginx/templates, sized like the official image.", "",
        table(runs), "", *verdicts(runs, exact, rss, unique), "",
    ])  # fmt: skip
    print(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
