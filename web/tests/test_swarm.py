"""Zero downtime on a real Docker Swarm: rolling restarts and deploys under load drop nothing.

deploy/swarm/stack.yml, deployed by deploy/swarm/swarm.sh (what `make deploy` runs) under its own
name, secrets and free port; the engine is made a single-node swarm for the run and left again if
it was in none. Each test keeps a steady load of counting requests going through nginx, checks
every reply and prints its figures (`pytest -s`), which deploy/swarm/README.md quotes.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from steady_load import SteadyLoad
from swarm_stack import Stack, Task, docker, swarm_stack, timestamp

pytestmark = pytest.mark.docker

RATE, CLIENTS = 300, 16
# Seconds of load in each test, at least; and before and after its action.
AT_LEAST, SETTLE = 20.0, 3.0
# Answered requests a second over the run: the cores are shared, but it must be a load.
MIN_RATE = 25
# The hard bound on one load, rollout included.
MAX_SECONDS = 300.0
# Docker records a container's death a few milliseconds after its connections broke.
DEATH_SLACK = 0.1


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    """The stack, deployed once for this module's tests, removed with its data at the end."""
    with swarm_stack() as stack:
        yield stack


@dataclass(frozen=True)
class Run:
    """A load around one action: every reply, and the counter before and how much it grew."""

    load: SteadyLoad
    before: int
    stored: int


def under_load(stack: Stack, name: str, action: Callable[[], None]) -> Run:
    """`action` with SETTLE s of steady load before and after it, AT_LEAST s in all."""
    before = stack.stored_count()
    load = SteadyLoad(stack.url, RATE, CLIENTS, MAX_SECONDS)
    time.sleep(SETTLE)
    started = time.time()
    try:
        action()
    finally:
        ended = time.time()
        time.sleep(max(SETTLE, load.started + AT_LEAST - ended))
        load.stop()
    run = Run(load, before, stack.stored_count() - before)
    seconds = load.ended - load.started
    latencies = sorted(o.ended - o.started for o in load.outcomes)
    print(
        f"\n{name}: {len(load.outcomes)} requests in {seconds:.0f} s ({load.rate():.0f}/s), "
        f"action {ended - started:.0f} s, non-2xx or no reply: {len(load.failures())}, "
        f"latency p50 {latencies[len(latencies) // 2]:.3f} s, max {latencies[-1]:.3f} s"
    )
    assert seconds >= AT_LEAST
    assert load.ended >= ended, "the load stopped before the action ended"
    assert load.rate() >= MIN_RATE
    return run


def assert_stored_once(run: Run, lost_replies: int = 0) -> None:
    """Each 200's number is distinct and stored; the count grew by the 200s (plus at most the
    requests whose reply was lost, which the app may have stored)."""
    numbers = run.load.numbers()
    assert len(numbers) == len(set(numbers)), "a number was handed out twice"
    assert all(run.before < n <= run.before + run.stored for n in numbers)
    assert len(numbers) <= run.stored <= len(numbers) + lost_replies


def test_a_rolling_restart_of_every_replica_drops_nothing(stack: Stack) -> None:
    old = {task.id for task in stack.wait_for_tasks("web", 3)}
    service = f"{stack.name}_web"
    run = under_load(
        stack, "rolling restart (service update --force)",
        lambda: docker("service", "update", "--force", "--detach=false", "--quiet", service,
                       timeout=MAX_SECONDS),
    )  # fmt: skip
    assert old.isdisjoint(task.id for task in stack.wait_for_tasks("web", 3))
    assert run.load.failures() == []
    assert_stored_once(run)


def derived_image(stack: Stack, base: str, suffix: str, line: str) -> str:
    """counter-web:<stack>-<suffix>: `base` plus one Dockerfile line (a new image ID)."""
    tag = f"counter-web:{stack.name}-{suffix}"
    docker("build", "--quiet", "--tag", tag, "-", stdin=f"FROM {base}\n{line}\n")
    return tag


def test_deploying_a_new_image_tag_drops_nothing(stack: Stack) -> None:
    current = stack.wait_for_tasks("web", 3)[0].image
    image = derived_image(stack, current, "v2", "LABEL org.opencontainers.image.version=v2")
    others = {service: stack.tasks(service) for service in ("db", "nginx")}
    run = under_load(stack, "new image tag", lambda: stack.run("deploy", WEB_IMAGE=image))
    assert {task.image for task in stack.wait_for_tasks("web", 3)} == {image}
    # The same command, the rest unchanged: db and nginx keep their tasks.
    assert {service: stack.tasks(service) for service in others} == others
    assert run.load.failures() == []
    assert_stored_once(run)


def test_a_release_that_cannot_start_is_rolled_back_and_drops_nothing(stack: Stack) -> None:
    current = stack.wait_for_tasks("web", 3)[0].image
    broken = derived_image(stack, current, "broken", 'CMD ["sh", "-c", "echo broken >&2; exit 1"]')
    output = ""

    def deploy_broken() -> None:
        nonlocal output
        output = stack.run("deploy", succeeds=False, WEB_IMAGE=broken)

    run = under_load(stack, "release that cannot start", deploy_broken)
    assert "rolled back" in output, output
    assert {task.image for task in stack.wait_for_tasks("web", 3)} == {current}
    assert run.load.failures() == []
    assert_stored_once(run)
    # A good deploy after it goes through.
    stack.run("deploy", WEB_IMAGE=current)


def kill_and_replace(stack: Stack, victim: Task) -> None:
    """SIGKILL the task's container; return once Swarm runs three healthy tasks again."""
    docker("kill", victim.container)
    stack.wait_for_tasks("web", 3, within=MAX_SECONDS / 2)


def test_a_killed_replica_fails_only_the_requests_it_held(stack: Stack) -> None:
    victim = stack.wait_for_tasks("web", 3)[0]
    run = under_load(stack, "one replica killed", lambda: kill_and_replace(stack, victim))
    assert victim.id not in {task.id for task in stack.wait_for_tasks("web", 3)}
    died = timestamp(json.loads(docker("inspect", victim.container))[0]["State"]["FinishedAt"])
    upstreams = stack.upstreams(since=run.load.started - 5)
    held = {
        o.request_id
        for o in run.load.outcomes
        if upstreams.get(o.request_id) == f"{victim.address}:8000"
        and o.started <= died <= o.ended + DEATH_SLACK
    }
    failures = run.load.failures()
    print(f"failed: {len(failures)}; in flight on the killed replica when it died: {len(held)}")
    others = [o for o in failures if o.request_id not in held]
    assert not others, others
    assert_stored_once(run, lost_replies=len(failures))


def test_no_secret_in_a_spec_an_environment_an_image_or_a_log(stack: Stack) -> None:
    # Last in this module: the logs then cover every restart, deploy and kill above.
    web, db = stack.tasks("web")[0], stack.tasks("db")[0]
    values = {
        name: docker("exec", task.container, "cat", f"/run/secrets/{name}")
        for task, name in ((web, "secret_key"), (web, "db_password"), (db, "mysql_root_password"))
    }
    assert all(len(value) >= 32 for value in values.values())
    services = [f"{stack.name}_{service}" for service in ("db", "web", "nginx")]
    tasks = [task for service in ("db", "web", "nginx") for task in stack.tasks(service)]
    seen = [
        docker("service", "inspect", *services),
        docker("inspect", *(task.container for task in tasks)),
        docker("history", "--no-trunc", web.image),
        docker("image", "inspect", web.image),
    ]
    for task in tasks:
        result = subprocess.run(["docker", "logs", task.container], capture_output=True, text=True)
        seen += [result.stdout, result.stderr]
    for name, value in values.items():
        assert not any(value in text for text in seen), f"{name}'s value is out in the open"
    # The app never gets MySQL's root password.
    spec = json.loads(docker("service", "inspect", f"{stack.name}_web"))[0]["Spec"]
    given = {secret["SecretName"] for secret in spec["TaskTemplate"]["ContainerSpec"]["Secrets"]}
    assert given == {f"{stack.name}_secret_key", f"{stack.name}_db_password"}
