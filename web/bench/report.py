"""The benchmark's markdown: one table of runs, then each target with its verdict."""

from __future__ import annotations

from dataclasses import dataclass

from bench.load import Run

COLUMNS = (
    "target", "request", "conns", "req/s", "p50 ms", "p99 ms", "non-2xx", "socket err",
    "2xx counted", "stored Δ", "lost", "cut off", "dup", "worker CPU",
)  # fmt: skip


@dataclass
class Exact:
    """The exact phase: every response read, so stored Δ must equal the 2xx count."""

    sent: int
    ok: int
    stored_delta: int
    distinct: int


def _cell(value: int | None) -> str:
    return "" if value is None else str(value)


def table(runs: list[Run]) -> str:
    """All runs, one row each."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in runs:
        cpu = " / ".join(f"{c:.0%}" for c in r.worker_cpu)
        cells = [
            r.target, f"{r.method} {r.path}", str(r.connections), f"{r.rps:,.0f}",
            f"{r.p50_ms:.1f}", f"{r.p99_ms:.1f}", str(r.non_2xx), str(r.socket_errors),
            _cell(r.ok), _cell(r.stored_delta), _cell(r.lost), _cell(r.cut_off),
            _cell(r.duplicates), cpu,
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def verdicts(runs: list[Run], exact: Exact, rss: list[float], unique: list[float]) -> list[str]:
    """The issue's targets, each with the measured figure and whether it was met."""
    by_key = {(r.target, r.method, r.path, r.connections): r for r in runs}
    out = []
    page, health = (
        by_key.get(("nginx", "GET", "/", 64)),
        by_key.get(("nginx", "GET", "/healthz", 64)),
    )
    if page and health:
        ratio = page.rps / health.rps
        out += [
            f"- GET / through nginx, 64 connections: {page.rps:,.0f} req/s = {ratio:.0%} of "
            f"/healthz's {health.rps:,.0f} (≥ 70%: {_met(ratio >= 0.7)}; "
            f"≥ 2,500 req/s: {_met(page.rps >= 2500)})",
            f"- its p99: {page.p99_ms:.1f} ms (< 50 ms: {_met(page.p99_ms < 50)})",
        ]
    wide = [r for r in runs if r.connections >= 256]
    if wide:
        failures = sum(r.non_2xx + r.socket_errors for r in wide)
        out.append(f"- 256 connections: {failures} errors or timeouts in {len(wide)} runs "
                   f"({_met(failures == 0)})")  # fmt: skip
    counted = [r for r in runs if r.ok is not None]
    lost = sum(r.lost or 0 for r in counted)
    dups = sum(r.duplicates or 0 for r in counted)
    over = [r for r in counted if (r.cut_off or 0) > r.connections]
    out.append(
        f"- correctness over {len(counted)} counting runs: {lost} lost, {dups} duplicate numbers, "
        f"{len(over)} runs with more cut-off increments than connections "
        f"({_met(lost == dups == len(over) == 0)})"
    )
    exact_ok = exact.sent == exact.ok == exact.stored_delta == exact.distinct
    out.append(
        f"- exact phase, {exact.sent} POSTs over 64 connections through nginx, every response "
        f"read: {exact.ok} 2xx, stored +{exact.stored_delta}, {exact.distinct} distinct "
        f"({_met(exact_ok)})"
    )
    worst = max(rss, default=0.0)
    out.append(
        f"- worker RSS: {', '.join(f'{m:.0f} MB' for m in rss)} (< 80 MB: {_met(worst < 80)}); "
        f"unique to each worker: {', '.join(f'{m:.0f} MB' for m in unique)}"
    )
    return out
