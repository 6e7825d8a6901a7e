"""What the runtime reports, applied to memory: endpoints, Jobs, namespaces and learner sessions."""

from __future__ import annotations

from syringe.learners import LearnerSession, SessionGone
from syringe.livelessons.core import Core
from syringe.livelessons.model import Status
from syringe.livelessons.recovery import mirror
from syringe.livelessons.stages import verification_news
from syringe.plan.jobenv import TERMINATION_MESSAGE_LIMIT
from syringe.runtime.base import (
    EndpointObservation,
    JobObservation,
    JobPodObservation,
    NamespaceGone,
    NamespaceObserved,
    RuntimeEvent,
)


def on_event(core: Core, event: RuntimeEvent) -> None:
    if isinstance(event, NamespaceObserved):
        mirror(core, event.record)
    elif isinstance(event, LearnerSession | SessionGone):
        core.learners.observed(event, in_use=lambda session: bool(core.registry.of_session(session)))
    elif isinstance(event, JobObservation | JobPodObservation):
        _on_job(core, event)
    elif isinstance(event, NamespaceGone):
        ll = core.registry.by_namespace(event.namespace)
        if ll is not None:
            core.namespace_gone(ll)
    elif isinstance(event, EndpointObservation):
        _on_endpoint(core, event)


def _on_job(core: Core, event: JobObservation | JobPodObservation) -> None:
    ll = core.registry.by_namespace(event.namespace)
    if ll is None:
        return
    # Listeners hear of a Job only when what is known of it changed: a Job reported again after it ended
    # (the Job controller's update after its pod's) must not wake another READY lesson's streams.
    if isinstance(event, JobPodObservation):
        news = False
        if event.message and ll.job_messages.get(event.job) != event.message[-TERMINATION_MESSAGE_LIMIT:]:
            ll.job_messages[event.job] = event.message[-TERMINATION_MESSAGE_LIMIT:]
            news = True
        # A Job runs one pod to completion: its pod succeeding, or its configurator saying so in its log
        # before that, is the Job succeeding, seen before the Job controller says so. (A failed pod may be
        # retried, so failure waits for the Job.)
        ended = event.phase in ("Succeeded", "Failed")
        if (event.phase == "Succeeded" or event.said_done) and ll.jobs.get(event.job) == "running":
            ll.jobs[event.job] = "succeeded"
            news = True
            if not ended:
                ll.ending.add(event.job)
        if ended and event.job in ll.ending:
            ll.ending.discard(event.job)
            news = True
        if news:
            verification_news(ll, event.job)
            core.registry.notify(ll)
        return
    # A Job this process did not start is recorded once it has ended: after a restart, the configuration
    # Jobs of a launch in progress are adopted by name (configuring.launch_run), and may end before the
    # launch is driven on.
    if event.name not in ll.jobs and not (event.failed or event.succeeded):
        return
    before = ll.jobs.get(event.name)
    if event.failed:
        ll.jobs[event.name] = "failed"
    elif event.succeeded:
        ll.jobs[event.name] = "succeeded"
    if verification_news(ll, event.name) or ll.jobs.get(event.name) != before:
        core.registry.notify(ll)


def _on_endpoint(core: Core, event: EndpointObservation) -> None:
    ll = core.registry.by_namespace(event.namespace)
    if ll is None or event.endpoint not in ll.endpoints:
        return
    ll.endpoints[event.endpoint].observation = event
    if ll.status is Status.READY and not ll.deleting and (event.fatal or event.phase in ("Deleted", "Failed")):
        reason = f"endpoint {event.endpoint}: pod {event.phase.lower()}: {event.reason or ''} {event.message or ''}"
        core.hold(core.fail(ll, reason.strip(), event.reason or "pod-lost"), f"fail-{ll.id}")
    core.registry.notify(ll)
