"""One wrk run against one endpoint, and what the database says about it afterwards."""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.procstat import cpu_seconds
from counter.config import Settings
from harness.poll import poll_until
from harness.provision import stored_count

LUA = Path(__file__).with_name("wrk_report.lua")
COUNTING = {("GET", "/"), ("POST", "/api/counter")}


@dataclass
class Run:
    """One wrk run's figures; the counting fields are None for endpoints that don't count."""

    target: str
    method: str
    path: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    worker_cpu: list[float]
    ok: int | None = None
    stored_delta: int | None = None
    duplicates: int | None = None

    @property
    def lost(self) -> int | None:
        """2xx responses whose increment is not in the database (must be 0)."""
        if self.ok is None or self.stored_delta is None:
            return None
        return max(0, self.ok - self.stored_delta)

    @property
    def cut_off(self) -> int | None:
        """Stored increments whose response wrk dropped when its time ran out: at most one per
        connection; more would be extra updates."""
        if self.ok is None or self.stored_delta is None:
            return None
        return max(0, self.stored_delta - self.ok)


def settled_count(settings: Settings) -> int:
    """The count once the server has answered what the last load left queued (wrk stops
    mid-flight and the server still serves those), so the next run's delta is its own."""
    last: list[int | None] = [None]

    def unchanged() -> bool:
        now = stored_count(settings)
        same, last[0] = now == last[0], now
        return same

    poll_until(unchanged, 5, "the stored count to settle", interval=0.2)
    assert last[0] is not None
    return last[0]


def wrk(
    url: str, method: str, connections: int, seconds: int, values: Path | None = None
) -> dict[str, int]:
    """Run wrk with wrk_report.lua and return its JSON summary line."""
    command = [
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
        "-s", str(LUA), url, "--", method, *([str(values)] if values else []),
    ]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=True)
    summary: dict[str, int] = json.loads(out.stdout.strip().splitlines()[-1])
    return summary


def measure(
    target: str, base_url: str, method: str, path: str, connections: int, seconds: int,
    settings: Settings, workers: list[int],
) -> Run:  # fmt: skip
    """wrk on one endpoint; for counting ones, check every number seen against the stored row."""
    counting = (method, path) in COUNTING
    with tempfile.NamedTemporaryFile(suffix=".values") as values_file:
        values = Path(values_file.name) if counting else None
        before = settled_count(settings) if counting else 0
        cpu = [cpu_seconds(pid) for pid in workers]
        summary = wrk(base_url + path, method, connections, seconds, values)
        wall = summary["duration_us"] / 1e6
        run = Run(
            target=target, method=method, path=path, connections=connections,
            rps=summary["requests"] / wall,
            p50_ms=summary["p50_us"] / 1000,
            p99_ms=summary["p99_us"] / 1000,
            non_2xx=summary["status"],
            socket_errors=sum(summary[k] for k in ("connect", "read", "write", "timeout")),
            worker_cpu=[(cpu_seconds(pid) - c) / wall for pid, c in zip(workers, cpu, strict=True)],
        )  # fmt: skip
        if values is not None:
            seen = [int(v) for v in values.read_text().split()]
            run.ok = len(seen)
            run.duplicates = len(seen) - len(set(seen))
            run.stored_delta = settled_count(settings) - before
    return run
