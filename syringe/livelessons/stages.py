"""Stage changes and the learner's checks of a stage."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets

from syringe.errors import Busy, LaunchFailed, UnknownLesson
from syringe.livelessons.configuring import configure
from syringe.livelessons.core import Core, log_context
from syringe.livelessons.model import LiveLesson, Status, Verification
from syringe.plan import labels
from syringe.plan.jobs import CONFIGURATION, is_configuration_job, verification_job

log = logging.getLogger(__name__)


async def set_stage(core: Core, ll: LiveLesson, stage: int) -> LiveLesson:
    """Move a READY live lesson to another stage: CONFIGURATION, then READY again. No pod is recreated."""
    source = core.tree.lessons.get(ll.lesson)
    if source is None or not 0 <= stage < len(source.lesson.stages):
        count = len(source.lesson.stages) if source else 0
        raise UnknownLesson(f"lesson '{ll.lesson}' has stages 0-{count - 1}, not {stage}")
    if ll.deleting:
        raise Busy(f"live lesson {ll.id} is being deleted")
    if ll.status is not Status.READY:
        raise Busy(f"live lesson {ll.id} is {ll.status.value}; the stage can change once it is READY")
    if stage == ll.stage:
        return ll
    ll.stage = stage
    core.drive(ll, _configure_stage(core, ll), "stage")
    core.writer.pass_through(ll, Status.CONFIGURATION)
    await core.writer.write(ll, {labels.STAGE: str(stage)})
    return ll


# How long a stage change waits for the previous stage's Job pods to end, once their configurators have said
# they are done: about a second (the kubelet's relist), longer on a busy node; past this it goes on anyway.
ENDING_WAIT = 5.0


async def _previous_pods_ended(ll: LiveLesson, timeout: float) -> None:
    """Wait until the pods of Jobs that said they were done have ended: until then each holds its CPU on the
    node and its place in the quota, and a new Job's pod may find no room and wait out the scheduler's
    back-off, seconds longer than this wait. Only a stage asked for right after READY waits at all."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while ll.ending and loop.time() < deadline:
        ll.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ll.changed.wait(), deadline - loop.time())


async def _configure_stage(core: Core, ll: LiveLesson) -> None:
    """Stop the previous stage's configuration if any still runs, run this one's, honour readyDelay, and be
    READY. A stage changes only when READY, so the previous Jobs have normally all succeeded: they are left
    alone (finished pods count against no quota, and go with the namespace). Deleting a Job whose
    configurator has just written its done line races the kubelet reaping its container, and a 1.20 kubelet
    then leaves the pod Terminating for a minute, which holds up the lesson's deletion."""
    try:
        loop = asyncio.get_running_loop()
        if any(state == "running" and is_configuration_job(name) for name, state in ll.jobs.items()):
            await core.runtime.delete_jobs(ll.namespace, f"{labels.PURPOSE}={CONFIGURATION}")
        await _previous_pods_ended(ll, ENDING_WAIT)
        await configure(core, ll, loop.time() + core.settings.launch_timeout)
        delay = core.tree.lessons[ll.lesson].lesson.ready_delay
        if delay:
            await asyncio.sleep(delay)
        await core.writer.settle(ll, Status.READY)
    except LaunchFailed as exc:
        await core.fail(ll, str(exc), exc.kind)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # the learner gets a reason, not a hang
        log.exception("live lesson %s: stage change failed", ll.id, extra=log_context(ll))
        await core.fail(ll, f"changing to stage {ll.stage} failed: {exc}", "stage")


async def verify(core: Core, ll: LiveLesson) -> LiveLesson:
    """Run the current stage's learner checks in a Job; results arrive in ``ll.verification``.
    A failed check is a result for the learner: the live lesson stays READY."""
    if ll.status is not Status.READY:
        raise Busy(f"live lesson {ll.id} is {ll.status.value}; checks run once it is READY")
    if ll.verification is not None and ll.verification.status == "running":
        return ll
    lesson = core.tree.lessons[ll.lesson].lesson
    if not lesson.stages[ll.stage].verify:
        ll.verification = Verification(stage=ll.stage, job="", status="done")
        core.registry.notify(ll)
        return ll
    plan = await core.plan_for(ll)
    job = verification_job(lesson, plan, ll.stage, secrets.token_hex(3), core.plan_settings)
    ll.verification = Verification(stage=ll.stage, job=job["metadata"]["name"])
    ll.jobs[ll.verification.job] = "running"
    core.registry.notify(ll)
    try:
        await core.runtime.create([job])
    except Exception as exc:  # the checks did not start: say so, so that the learner can run them again
        ll.jobs.pop(ll.verification.job, None)
        ll.verification.status, ll.verification.error = "error", f"the checks could not start: {exc}"
        core.registry.notify(ll)
        raise
    return ll


def verification_news(ll: LiveLesson, job: str) -> bool:
    """A verification Job finished: its pod's termination message holds the results as JSON. True when
    the live lesson's verification changed."""
    verification = ll.verification
    if verification is None or verification.job != job or verification.status != "running":
        return False
    state = ll.jobs.get(job)
    message = ll.job_messages.get(job)
    if message:
        try:
            report = json.loads(message)
            verification.results = list(report["results"])
            verification.status = "done"
        except (ValueError, KeyError, TypeError):
            verification.status, verification.error = "error", message[-500:]
    elif state == "failed":
        verification.status, verification.error = "error", "the checks could not run"
    else:
        return False
    return True
