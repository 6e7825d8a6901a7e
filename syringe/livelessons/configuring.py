"""Configuring a live lesson for its stage: hostname and addresses where the runtime did not already give
them, then the stage's configuration Jobs, waiting for every one to succeed."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import secrets

from syringe.configure.base import base_configure
from syringe.curriculum.models import Endpoint
from syringe.errors import ConfigureError, LaunchFailed, RuntimeUnavailable
from syringe.livelessons.core import Core
from syringe.livelessons.model import LiveLesson
from syringe.livelessons.reaching import address
from syringe.plan import Plan, labels
from syringe.plan.jobs import configuration_jobs, configured_through


def _needs_base_configuration(core: Core, ll: LiveLesson, endpoint: Endpoint) -> bool:
    """A Linux (container-image) endpoint with an SSH presentation whose runtime did not give it its
    hostname and addresses as it booted. Known from the endpoint's first observation on."""
    image = core.tree.images.get(endpoint.image)
    ssh = next((p for p in endpoint.presentations if p.type == "ssh"), None)
    seen = ll.endpoints[endpoint.name].observation
    if image is None or image.kind != "container" or ssh is None or seen is None or seen.reach is None:
        return False
    return not seen.identity_assigned


async def _base_configure(core: Core, ll: LiveLesson, plan: Plan) -> None:
    """Hostname and interface addresses on every Linux (container-image) endpoint with an SSH presentation
    whose runtime did not assign them as it booted, all at once."""
    lesson = core.tree.lessons[ll.lesson].lesson

    async def one(endpoint: Endpoint) -> None:
        if not _needs_base_configuration(core, ll, endpoint):
            return
        image = core.tree.images[endpoint.image]
        ssh = next(p for p in endpoint.presentations if p.type == "ssh")
        seen = ll.endpoints[endpoint.name].observation
        assert seen is not None and seen.reach is not None
        interfaces = [(i["name"], i["address"]) for i in plan.topology["endpoints"][endpoint.name]["interfaces"]]
        try:
            await base_configure(
                seen.reach.host,
                seen.reach.port(ssh.port),
                image.config_user or image.ssh_user,
                image.config_password or image.ssh_password,
                endpoint.name,
                interfaces,
                core.settings.probe_attempt_timeout * 6,
            )
        except ConfigureError as exc:
            raise LaunchFailed(f"endpoint {endpoint.name}: base configuration: {exc}", "configuration") from exc

    await asyncio.gather(*(one(endpoint) for endpoint in lesson.endpoints))


async def _await_output(ll: LiveLesson, job: str, timeout: float = 2.0) -> None:
    """A failed Job's pod, with its output, may be reported a moment after the Job itself."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while ll.job_messages.get(job) in (None, "") and loop.time() < deadline:
        ll.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ll.changed.wait(), deadline - loop.time())


def launch_run(ll: LiveLesson) -> str:
    """The run name of a launch's configuration: the same for every process that drives this launch, so
    that a replacement adopts the Jobs its predecessor started instead of starting a second set (which
    the lesson's quota would hold back until the first set ended)."""
    return hashlib.sha256(f"{ll.id}/{ll.stage}".encode()).hexdigest()[:6]


async def start_early(core: Core, ll: LiveLesson, plan: Plan, run: str) -> bool:
    """Start the stage's configuration Jobs while the endpoints boot, each waiting for its endpoint to
    answer: their pods are scheduled, started and waiting by the time the endpoints are, instead of after.
    Only when no endpoint needs base configuration first (known once every endpoint has been observed with
    an address). Returns whether the Jobs were started; a refusal is left for ``configure`` to report."""
    lesson = core.tree.lessons[ll.lesson].lesson
    configured = [e for e in lesson.endpoints if e.configuration_type is not None]
    # The Job waits for the protocol it configures through (an SSH handshake, a NETCONF <hello>). An
    # endpoint that does not present it (a python configurator of an HTTP service) starts after the probes.
    if not configured or not all(configured_through(e) for e in configured):
        return False
    loop = asyncio.get_running_loop()
    deadline = loop.time() + core.settings.probe_timeout
    while any(state.observation is None or address(state) is None for state in ll.endpoints.values()):
        ll.changed.clear()
        if loop.time() >= deadline:
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ll.changed.wait(), deadline - loop.time())
    if any(_needs_base_configuration(core, ll, e) for e in lesson.endpoints):
        return False
    wait = int(core.settings.probe_timeout)
    jobs = configuration_jobs(
        lesson, plan, ll.stage, run, core.plan_settings, wait_for_target=wait, done_token=secrets.token_hex(16)
    )
    try:
        await core.runtime.create(jobs)
    except RuntimeUnavailable:
        return False
    for job in jobs:
        ll.jobs.setdefault(job["metadata"]["name"], "running")
    return True


async def configure(
    core: Core, ll: LiveLesson, deadline: float, plan: Plan | None = None, run: str | None = None
) -> None:
    """Base configuration, then the current stage's configuration Jobs, waiting for every one to succeed.
    ``run`` names the Jobs (a new name for every stage change); Jobs of that name already started (by
    ``start_early``, or by the process this one replaced) are waited for, not started again."""
    source = core.tree.lessons[ll.lesson]
    plan = plan or await core.plan_for(ll)
    await _base_configure(core, ll, plan)
    jobs = configuration_jobs(
        source.lesson, plan, ll.stage, run or secrets.token_hex(3), core.plan_settings, done_token=secrets.token_hex(16)
    )
    if not jobs:
        return
    names = {job["metadata"]["name"]: job["metadata"]["labels"][labels.ENDPOINT] for job in jobs}
    waiting = [job for job in jobs if job["metadata"]["name"] not in ll.jobs]
    for name in names:
        ll.jobs.setdefault(name, "running")
    try:
        if waiting:
            await core.runtime.create(waiting)
    except RuntimeUnavailable as exc:
        raise LaunchFailed(f"starting stage {ll.stage}'s configuration: {exc}", "configuration") from exc
    loop = asyncio.get_running_loop()
    while True:
        ll.changed.clear()
        for name, endpoint in names.items():
            if ll.jobs.get(name) == "failed":
                await _await_output(ll, name)
                tail = ll.job_messages.get(name) or "no output"
                raise LaunchFailed(f"endpoint {endpoint}: configuring stage {ll.stage}: {tail}", "configuration")
        if all(ll.jobs.get(name) == "succeeded" for name in names):
            return
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise LaunchFailed(f"stage {ll.stage}'s configuration did not finish in time", "timeout")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ll.changed.wait(), remaining)
