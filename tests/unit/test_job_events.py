"""A configuration Job's news, applied to a live lesson: its done line, then its pod's end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from syringe.curriculum import load_curriculum
from syringe.livelessons import LiveLessons
from syringe.livelessons.events import on_event
from syringe.livelessons.stages import _previous_pods_ended
from syringe.plan import PlanSettings
from syringe.runtime.base import JobPodObservation
from syringe.settings import LifecycleSettings
from tests.integration.helpers import REPO
from tests.unit.test_antidote_contract import HeldRuntime

JOB = "config-s0-rabc123-r1"


@pytest.fixture
async def manager() -> AsyncIterator[LiveLessons]:
    tree = load_curriculum(REPO / "lessons")
    live = LiveLessons(tree, HeldRuntime(), PlanSettings(instance="ut"), LifecycleSettings())  # type: ignore[arg-type]
    yield live
    await live.stop()


async def test_a_done_line_succeeds_the_job_and_its_pod_ending_is_waited_for(manager: LiveLessons) -> None:
    ll = await manager.launch("learner", "static-routing")
    ll.jobs[JOB] = "running"
    on_event(manager.core, JobPodObservation(ll.namespace, JOB, "Running", said_done=True))
    assert ll.jobs[JOB] == "succeeded"
    assert ll.ending == {JOB}

    waiting = asyncio.create_task(_previous_pods_ended(ll, 30))
    await asyncio.sleep(0.05)
    assert not waiting.done()  # the pod still holds its CPU and its place in the quota
    on_event(manager.core, JobPodObservation(ll.namespace, JOB, "Succeeded"))
    await asyncio.wait_for(waiting, 5)
    assert ll.ending == set() and ll.jobs[JOB] == "succeeded"


async def test_a_pod_seen_to_succeed_first_leaves_nothing_to_wait_for(manager: LiveLessons) -> None:
    ll = await manager.launch("learner", "static-routing")
    ll.jobs[JOB] = "running"
    on_event(manager.core, JobPodObservation(ll.namespace, JOB, "Succeeded"))
    on_event(manager.core, JobPodObservation(ll.namespace, JOB, "Running", said_done=True))  # a late line
    assert ll.jobs[JOB] == "succeeded" and ll.ending == set()
    await asyncio.wait_for(_previous_pods_ended(ll, 30), 1)


async def test_the_wait_for_ending_pods_is_bounded(manager: LiveLessons) -> None:
    ll = await manager.launch("learner", "static-routing")
    ll.jobs[JOB] = "running"
    on_event(manager.core, JobPodObservation(ll.namespace, JOB, "Running", said_done=True))
    await asyncio.wait_for(_previous_pods_ended(ll, 0.2), 2)  # a pod never seen to end: go on anyway
    assert ll.ending == {JOB}
