"""One line that says what the benchmark ran on, so its figures can be compared."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from pathlib import Path

from counter.config import Settings
from harness.provision import root_connection


def _cpu_model() -> str:
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    match = re.search(r"model name\s*:\s*(.+)", text)
    return match.group(1).strip() if match else platform.processor() or "unknown CPU"


def _memory_gib() -> float:
    text = Path("/proc/meminfo").read_text()
    match = re.search(r"MemTotal:\s*(\d+)", text)
    return int(match.group(1)) / 1024 / 1024 if match else 0.0


def _version(command: list[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except OSError:
        return "?"
    return (out.stdout + out.stderr).strip().splitlines()[0] if (out.stdout + out.stderr) else "?"


def describe_machine(settings: Settings) -> str:
    """CPU, cores, memory, OS, Python, database server, nginx and wrk versions."""
    with root_connection(settings).cursor() as cur:
        cur.execute("SELECT VERSION()")
        row = cur.fetchone()
    database = row[0] if row else "?"
    nginx = _version(["nginx", "-v"]).replace("nginx version: ", "")
    wrk = _version(["wrk", "-v"]).split(" [")[0]
    return (
        f"{_cpu_model()}, {os.cpu_count()} cores, {_memory_gib():.0f} GiB, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
        f"MySQL server {database}, {nginx}, {wrk}"
    )
