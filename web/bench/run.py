"""`make bench`: wrk on the counter, direct and through nginx, correctness checked after every run.

Uses the server `make local-db` ensured, migrates a fresh throwaway database, runs the production
shape: one Hypercorn process per core (hypercorn_conf.py, QUART_ENV=production), each on its own
port, and nginx from the project's template with all of them upstream. "direct" hits one process,
"nginx" all of them. Runs wrk for a bounded time per endpoint and connection count, and
prints one markdown table (also written to bench/results/latest.md). It stops all it started.
Tuning: BENCH_SECONDS per run (default 5), BENCH_CONNECTIONS (default "8,64,256").
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import sys
from contextlib import ExitStack
from pathlib import Path

from bench.exact_load import exact_load
from bench.load import Run, measure, settled_count, wrk
from bench.machine import describe_machine
from bench.procstat import rss_mb, unique_mb
from bench.report import Exact, table, verdicts
from counter.config import Settings, load_quartenv
from harness.provision import migrate, throwaway_database
from harness.servers import run_hypercorn, run_nginx

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
    with throwaway_database(base) as settings, ExitStack() as stack:
        migrate(settings)
        # Production defaults, whatever .quartenv says for development (LOG_REQUESTS=1).
        production = dataclasses.replace(
            settings,
            environment="production",
            secret_key=secrets.token_urlsafe(32),
            log_requests=False,
        )
        webs = [stack.enter_context(run_hypercorn(production)) for _ in range(os.cpu_count() or 1)]
        pids = [web.process.pid for web in webs]
        upstreams = [web.netloc for web in webs]
        proxy = stack.enter_context(run_nginx(upstreams, production=True))
        for target, url in (("direct", webs[0].url), ("nginx", proxy.url)):
            wrk(url + "/", "GET", 64, 2)  # warm-up: pools filled, code paths hot
            for method, path in ENDPOINTS:
                for c in connections:
                    runs.append(measure(target, url, method, path, c, seconds, settings, pids))
                    progress(runs[-1])
        before = settled_count(settings)
        result = exact_load(proxy.url, "/api/counter", EXACT_REQUESTS, 64)
        exact = Exact(EXACT_REQUESTS, result.ok, settled_count(settings) - before,
                      len(set(result.values)))  # fmt: skip
        rss = [rss_mb(pid) for pid in pids]
        unique = [unique_mb(pid) for pid in pids]
        machine = describe_machine(settings)
    report = "\n".join([
        f"## make bench: {machine}", "",
        f"wrk -t1, {seconds} s per run; {len(pids)} Hypercorn processes (one per core, uvloop), "
        "QUART_ENV=production; direct = one of them; nginx from nginx/templates with all of them "
        "upstream, sized like the official image.", "",
        table(runs), "", *verdicts(runs, exact, rss, unique), "",
    ])  # fmt: skip
    print(report)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.md").write_text(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
