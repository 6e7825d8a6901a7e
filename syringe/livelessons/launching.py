"""Driving a launch: apply the plan, wait for the endpoints to run, probe every presentation, configure
the stage, and be READY — or fail with a reason a person can act on."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable

from syringe.access.probes import Target, sweep
from syringe.errors import LaunchFailed, ProbeFailed, RuntimeUnavailable
from syringe.livelessons.configuring import configure, launch_run, start_early
from syringe.livelessons.core import Core, log_context
from syringe.livelessons.model import EndpointState, LiveLesson, Status
from syringe.livelessons.reaching import address, probe_targets
from syringe.observability import metrics

log = logging.getLogger(__name__)


async def drive(core: Core, ll: LiveLesson) -> None:
    """Apply the plan (again, after a restart: applying is idempotent), then on to READY."""
    source = core.tree.lessons[ll.lesson]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + core.settings.launch_timeout
    try:
        plan = await core.plan_for(ll)
        try:
            await core.runtime.apply(plan)
        except RuntimeUnavailable as exc:
            await core.fail(ll, f"creating the lesson's objects: {exc}", "apply", cleanup=True)
            return
        core.writer.pass_through(ll, Status.BOOTING)
        run = launch_run(ll)
        early = asyncio.create_task(start_early(core, ll, plan, run), name=f"configure-early-{ll.id}")
        try:
            await _wait_for_endpoints(core, ll, deadline)
            await _probe(core, ll, deadline)
        finally:
            if not early.done():
                early.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await early
        core.writer.pass_through(ll, Status.CONFIGURATION)
        await configure(core, ll, deadline, plan, run)
        if source.lesson.ready_delay:
            await asyncio.sleep(source.lesson.ready_delay)
        await core.writer.settle(ll, Status.READY)
        seconds = (core.clock() - ll.created_at).total_seconds()
        metrics.LAUNCH_SECONDS.labels(ll.lesson).observe(seconds)
        log.info("live lesson %s READY in %.1fs", ll.id, seconds, extra=log_context(ll))
    except LaunchFailed as exc:
        await core.fail(ll, str(exc), exc.kind)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.exception("live lesson %s: launch failed", ll.id, extra=log_context(ll))
        await core.fail(ll, f"launch failed unexpectedly: {exc}", "internal", cleanup=True)


async def _wait_for_endpoints(core: Core, ll: LiveLesson, deadline: float) -> None:
    loop = asyncio.get_running_loop()
    unschedulable_since: dict[str, float] = {}
    grace = core.settings.unschedulable_grace
    while True:
        ll.changed.clear()
        waiting = []
        for endpoint in ll.endpoints.values():
            seen = endpoint.observation
            if seen is not None and seen.fatal:
                raise LaunchFailed(
                    f"endpoint {endpoint.name}: starting pod: {seen.reason}: {seen.message or ''}".rstrip(": "),
                    seen.reason or "Failed",
                )
            if seen is not None and seen.reason == "Unschedulable":
                since = unschedulable_since.setdefault(endpoint.name, loop.time())
                if loop.time() - since > grace:
                    raise LaunchFailed(
                        f"endpoint {endpoint.name}: scheduling pod: Unschedulable: {seen.message}", "Unschedulable"
                    )
            if not endpoint.running or address(endpoint) is None:
                waiting.append(endpoint.name)
        if not waiting:
            return
        remaining = deadline - loop.time()
        if remaining <= 0:
            names = ", ".join(waiting)
            timeout = core.settings.launch_timeout
            raise LaunchFailed(f"endpoints {names}: pods not running after {timeout:.0f}s", "timeout")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ll.changed.wait(), min(remaining, grace or remaining))


async def _probe(core: Core, ll: LiveLesson, deadline: float) -> None:
    """Probe every presentation of every endpoint at once, each with backoff, until the probe timeout."""
    deadline = min(deadline, asyncio.get_running_loop().time() + core.settings.probe_timeout)
    targets: dict[Hashable, Target] = {}
    ports: dict[Hashable, tuple[EndpointState, int]] = {}
    for endpoint in ll.endpoints.values():
        for port, (name, target) in probe_targets(core.tree, ll, endpoint.name, core.settings.http_probe_path).items():
            key = f"{endpoint.name}/{name}" if name == f"port {port}" else f"{endpoint.name}/{name} (port {port})"
            targets[key], ports[key] = target, (endpoint, port)

    def reachable(key: Hashable) -> None:
        endpoint, port = ports[key]
        endpoint.reachable.add(port)
        core.registry.notify(ll)

    try:
        # Every endpoint is up by now (_wait_for_endpoints), so a port that keeps refusing has nothing behind it.
        await sweep(targets, deadline, core.settings.probe_attempt_timeout, reachable, core.settings.refusal_grace)
    except ProbeFailed as exc:
        raise LaunchFailed(str(exc), "probe") from exc
