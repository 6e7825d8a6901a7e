"""Configuring a live lesson for its stage: hostname and addresses where the runtime did not already give
them, then the stage's configuration Jobs, waiting for every one to succeed."""

from __future__ import annotations

import asyncio
import contextlib
import secrets

from syringe.configure.base import base_configure
from syringe.curriculum.models import Endpoint
from syringe.errors import ConfigureError, LaunchFailed, RuntimeUnavailable
from syringe.livelessons.core import Core
from syringe.livelessons.model import LiveLesson
from syringe.plan import Plan, labels
from syringe.plan.jobs import configuration_jobs


async def _base_configure(core: Core, ll: LiveLesson, plan: Plan) -> None:
    """Hostname and interface addresses on every Linux (container-image) endpoint with an SSH presentation
    whose runtime did not assign them as it booted, all at once."""
    lesson = core.tree.lessons[ll.lesson].lesson

    async def one(endpoint: Endpoint) -> None:
        image = core.tree.images.get(endpoint.image)
        ssh = next((p for p in endpoint.presentations if p.type == "ssh"), None)
        seen = ll.endpoints[endpoint.name].observation
        if image is None or image.kind != "container" or ssh is None or seen is None or seen.reach is None:
            return
        if seen.identity_assigned:
            return
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


async def configure(core: Core, ll: LiveLesson, deadline: float, plan: Plan | None = None) -> None:
    """Base configuration, then the current stage's configuration Jobs, waiting for every one to succeed."""
    source = core.tree.lessons[ll.lesson]
    plan = plan or await core.plan_for(ll)
    await _base_configure(core, ll, plan)
    jobs = configuration_jobs(source.lesson, plan, ll.stage, secrets.token_hex(3), core.plan_settings)
    if not jobs:
        return
    names = {job["metadata"]["name"]: job["metadata"]["labels"][labels.ENDPOINT] for job in jobs}
    for name in names:
        ll.jobs[name] = "running"
    try:
        await core.runtime.create(jobs)
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
