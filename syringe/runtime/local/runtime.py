"""The local runtime: each endpoint of a live lesson is one unprivileged QEMU process on this machine.

It reads the same plan as the Kubernetes runtime: the namespace becomes a directory, each Pod a VM, each
connection a point-to-point UDP link between two VMs, the lesson ConfigMaps a read-only 9p share, the
Jobs local processes. Nothing outlives Syringe: VMs die with it (PR_SET_PDEATHSIG), and the ones a crash
left anyway are ended at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from syringe.curriculum.models import Image, Lesson
from syringe.errors import EndpointCannotRunLocally, QemuSpecError, RuntimeUnavailable, VmFailed, WarmBootFailed
from syringe.plan import Plan
from syringe.plan.files import unpack_files
from syringe.qemu.command import READY_LINE, VmSpec
from syringe.qemu.process import VmProcess, choose_accel
from syringe.runtime.base import (
    EndpointObservation,
    Exposure,
    JobObservation,
    JobPodObservation,
    LiveLessonRecord,
    NamespaceGone,
    Reach,
    RuntimeEvent,
)
from syringe.runtime.fanout import EventFanout
from syringe.runtime.local.host import end_leftovers, free_port
from syringe.runtime.local.jobs import JobOutcome, run_job, selector_matches
from syringe.runtime.local.machines import SHARE, Machines
from syringe.runtime.local.sandbox import Sandbox, find_sandbox
from syringe.runtime.local.state import JOBS, Account, lesson_directory, make_state_dir, write_share
from syringe.runtime.local.warm import resume_restored
from syringe.settings import LocalSettings

log = logging.getLogger(__name__)

LOCAL_ADDRESS = "127.0.0.1"
START_ATTEMPTS = 3  # a forwarded port taken between choosing it and QEMU binding it: choose again
UNPRIVILEGED_USER = "nobody"  # whom QEMU and lesson code run as when Syringe is root


@dataclass
class LocalEndpoint:
    name: str
    vm: VmProcess
    reach: Reach
    tiny: bool
    ready_line: str | None  # what the guest prints when it serves; None: no such line, probe at once
    cold: VmSpec | None = None  # the VM is a warm boot; this is the cold boot to fall back to
    watcher: asyncio.Task[None] | None = None


@dataclass
class LocalJob:
    labels: dict[str, str]
    process: asyncio.subprocess.Process | None = None
    task: asyncio.Task[None] = field(init=False)  # set as soon as the job is made: it runs the job


@dataclass
class LocalLesson:
    namespace: str
    labels: dict[str, str]
    annotations: dict[str, str]
    directory: Path
    secret: dict[str, str]
    endpoints: dict[str, LocalEndpoint] = field(default_factory=dict)
    jobs: dict[str, LocalJob] = field(default_factory=dict)
    stopping: bool = False

    @property
    def lesson_dir(self) -> Path:
        return self.directory / SHARE

    @property
    def reach(self) -> dict[str, Reach]:
        return {name: endpoint.reach for name, endpoint in self.endpoints.items()}


class LocalRuntime:
    """Where live lessons run when there is no cluster. Implements syringe.runtime.base.Runtime."""

    def __init__(self, curriculum_root: Path, images: Mapping[str, Image], instance: str, settings: LocalSettings):
        self.images = dict(images)
        self.instance = instance
        self.settings = settings
        # The default is predictable, in /tmp: start() makes both levels Syringe's own, whatever it finds.
        self.default_base = None if settings.state_dir else Path(f"/tmp/syringe-local-{os.geteuid()}")
        self.state_dir = settings.state_dir or Path(f"/tmp/syringe-local-{os.geteuid()}") / instance
        self.accel = choose_accel(settings.accel)
        # As root, neither QEMU nor lesson code runs as root: both run as this user.
        self.run_as = Account.named(UNPRIVILEGED_USER) if os.geteuid() == 0 else None
        self.sandbox: Sandbox | None = None
        self.sandbox_problem = "the sandbox for lesson code is found when the runtime starts"
        self.lessons: dict[str, LocalLesson] = {}
        self._events = EventFanout()
        self.machines = Machines(curriculum_root, images, settings, self.state_dir, self.accel, self.run_as)

    @property
    def _qemu_user(self) -> str | None:
        return self.run_as.name if self.run_as is not None else None

    def cannot_run(self, lesson: Lesson) -> list[str]:
        """syringe.runtime.base.JudgesLessons: the endpoints whose images can never boot as local VMs."""
        reasons = (self.machines.cannot_boot(endpoint.name, endpoint.image) for endpoint in lesson.endpoints)
        return [reason for reason in reasons if reason is not None]

    # ------------------------------------------------------------------ protocol: start and stop
    async def check(self) -> list[str]:
        problems = []
        if shutil.which(self.settings.qemu_binary) is None:
            problems.append(
                f"{self.settings.qemu_binary} not found: install Debian's qemu-system-x86 package "
                "(scripts/setup.sh does), set SYRINGE_KUBECONFIG to use a cluster, or set "
                "SYRINGE_LOCAL__ENABLED=false to serve the catalog only"
            )
        return problems

    async def start(self) -> None:
        ended = await asyncio.to_thread(end_leftovers, self.instance)
        if ended:
            log.warning("ended %d VM(s) left over from an earlier run: pids %s", len(ended), ended)
        try:
            await asyncio.to_thread(make_state_dir, self.state_dir, self.default_base, self.run_as)
        except OSError as exc:
            raise RuntimeUnavailable(f"the local runtime's state directory: {exc}") from exc
        found = await asyncio.to_thread(find_sandbox, self._qemu_user)
        if isinstance(found, Sandbox):
            self.sandbox = found
            log.info("lesson code runs in a bubblewrap sandbox, as %s", found.user)
        else:
            self.sandbox_problem = found
            if self.settings.trust_lesson_code:
                log.warning("lesson code runs with no sandbox, as uid %d, as trusted: %s", os.geteuid(), found)
            else:
                log.warning("lesson code will not run (configuration scripts, checks): %s", found)
        # Every flavour of the tiny VM that the curriculum's images use, built (or found in the cache) now
        # rather than at a learner's first launch.
        tiny = [image.local for image in self.images.values() if image.local and image.local.kind == "tiny-linux"]
        flavours = {local.flavour for local in tiny}
        for flavour in sorted(flavours):
            try:
                await self.machines.tiny_linux(flavour)
            except RuntimeUnavailable as exc:
                log.warning("%s; lessons that need it will fail to launch", exc)
        log.info("local runtime: QEMU with %s, state in %s", self.accel, self.state_dir)

    async def close(self) -> None:
        await asyncio.gather(*(self.delete(namespace, 10) for namespace in list(self.lessons)))

    def events(self) -> AsyncIterator[RuntimeEvent]:
        return self._events.subscribe()

    def _emit(self, event: RuntimeEvent) -> None:
        self._events.publish(event)

    # ------------------------------------------------------------------ protocol: live lessons
    async def apply(self, plan: Plan) -> None:
        if plan.namespace in self.lessons:
            return
        namespace_object = plan.waves[0][0]["metadata"]
        pods = [obj for obj in plan.objects if obj["kind"] == "Pod"]
        secret = next((obj for obj in plan.objects if obj["kind"] == "Secret"), {})
        # Every endpoint is checked before any VM starts: an endpoint that cannot run leaves nothing behind.
        boots = {pod["metadata"]["name"]: await self.machines.boot_for(pod["metadata"]["name"], plan) for pod in pods}
        await self.machines.check_memory(boots)
        directory = self.state_dir / plan.namespace
        lesson = LocalLesson(
            namespace=plan.namespace,
            labels=dict(namespace_object.get("labels", {})),
            annotations=dict(namespace_object.get("annotations", {})),
            directory=directory,
            secret=dict(secret.get("stringData", {})),
        )
        files = unpack_files(plan.objects, plan.volume_sources)
        try:
            await asyncio.to_thread(lesson_directory, directory, self.run_as)
            await asyncio.to_thread(write_share, lesson.lesson_dir, files)
        except OSError as exc:
            await asyncio.to_thread(shutil.rmtree, directory, True)
            raise RuntimeUnavailable(f"the live lesson's directory {directory}: {exc}") from exc
        self.lessons[plan.namespace] = lesson
        try:
            states = await self.machines.warm_states(plan, boots)
            # Off the event loop: overlays are made with qemu-img, identities written to files.
            specs = await asyncio.to_thread(self.machines.specs, plan, pods, boots, lesson.directory, states)
        except Exception as exc:
            # Nothing half-made stays registered: a retry of the same plan must apply it for real.
            await self.delete(plan.namespace, 10)
            if isinstance(exc, QemuSpecError):
                raise EndpointCannotRunLocally(str(exc)) from exc
            raise
        for name, (spec, tiny, cold) in specs.items():
            reach = Reach(LOCAL_ADDRESS, dict(spec.forwards))
            image = boots[name][1]
            ready_line = READY_LINE if tiny else image.ready_line() or None
            vm = VmProcess(spec, self.settings.qemu_binary, self._qemu_user)
            endpoint = LocalEndpoint(name, vm, reach, tiny, ready_line, cold)
            lesson.endpoints[name] = endpoint
            self._observe(lesson, endpoint, "Pending", reason="Booting")
        # All VMs boot at once: a lesson's launch takes about as long as its slowest VM.
        for endpoint in lesson.endpoints.values():
            endpoint.watcher = asyncio.create_task(self._run_vm(lesson, endpoint), name=f"vm-{endpoint.name}")

    async def _run_vm(self, lesson: LocalLesson, endpoint: LocalEndpoint) -> None:
        """Start the VM, report it running once its guest is ready, and report its end if it ends."""
        timeout = self.settings.boot_timeout
        for attempt in range(START_ATTEMPTS):
            try:
                await endpoint.vm.start()
                vm = endpoint.vm
                if vm.spec.qmp and vm.spec.incoming:
                    await resume_restored(vm.spec.qmp, timeout, vm.is_running)
                waited = await endpoint.vm.wait_ready(timeout, endpoint.ready_line)
                break
            except (VmFailed, WarmBootFailed) as failure:
                if lesson.stopping:
                    return
                exc: Exception = failure
                # A restore whose QEMU ended before it answered on QMP: what QEMU said says why (a forwarded
                # port another process took meanwhile is retried warm, with new ports, below).
                said = await endpoint.vm.ended_with() if isinstance(failure, WarmBootFailed) else None
                if said is not None:
                    exc = VmFailed(f"{failure}: {said}")
                if "Could not set up host forwarding" in str(exc) and attempt + 1 < START_ATTEMPTS:
                    endpoint.vm = self._with_new_ports(endpoint)
                    continue
                if endpoint.cold is not None:
                    log.warning("%s/%s: warm boot failed, booting cold: %s", lesson.namespace, endpoint.name, exc)
                    await endpoint.vm.stop()
                    endpoint.vm = VmProcess(endpoint.cold, self.settings.qemu_binary, self._qemu_user)
                    endpoint.cold = None
                    continue
                self._observe(lesson, endpoint, "Failed", reason="VmFailed", message=str(exc), fatal=True)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - an endpoint that cannot start fails its launch, never hangs it
                log.error("%s/%s: starting the VM: %r", lesson.namespace, endpoint.name, exc)
                self._observe(lesson, endpoint, "Failed", reason="VmFailed", message=str(exc), fatal=True)
                return
        how = "restored" if endpoint.vm.spec.incoming else "booted"
        log.info("%s/%s: VM %s in %.1fs (%s)", lesson.namespace, endpoint.name, how, waited, self.accel)
        self._observe(lesson, endpoint, "Running", ready=True)
        status = await endpoint.vm.wait()
        if not lesson.stopping:
            message = f"qemu exited with status {status}: {endpoint.vm.console_tail(300)}"
            self._observe(lesson, endpoint, "Failed", reason="VmExited", message=message, fatal=True)

    def _with_new_ports(self, endpoint: LocalEndpoint) -> VmProcess:
        old = endpoint.vm.spec
        forwards = {port: free_port() for port in old.forwards}
        spec = replace(old, forwards=forwards)
        endpoint.reach = Reach(LOCAL_ADDRESS, forwards)
        if endpoint.cold is not None:  # a cold boot after all must forward the same ports
            endpoint.cold = replace(endpoint.cold, forwards=forwards)
        return VmProcess(spec, self.settings.qemu_binary, self._qemu_user)

    def _observe(
        self,
        lesson: LocalLesson,
        endpoint: LocalEndpoint,
        phase: str,
        ready: bool = False,
        reason: str | None = None,
        message: str | None = None,
        fatal: bool = False,
    ) -> None:
        self._emit(
            EndpointObservation(
                namespace=lesson.namespace,
                endpoint=endpoint.name,
                phase=phase,
                ready=ready,
                reason=reason,
                message=message,
                fatal=fatal,
                # QEMU forwards each served port from a port of its own on this machine: Syringe and the
                # learner's own clients alike reach the endpoint there.
                reach=endpoint.reach if phase == "Running" else None,
                exposure=Exposure(LOCAL_ADDRESS, dict(endpoint.reach.ports)) if phase == "Running" else None,
                identity_assigned=endpoint.tiny,
            )
        )

    def process_bound(self) -> str:
        return "the VMs run on this machine for as long as this process does"

    async def annotate(self, namespace: str, annotations: Mapping[str, str | None]) -> None:
        lesson = self.lessons.get(namespace)
        if lesson is None:
            return
        for key, value in annotations.items():
            if value is None:
                lesson.annotations.pop(key, None)
            else:
                lesson.annotations[key] = value

    async def delete(self, namespace: str, timeout: float) -> bool:
        lesson = self.lessons.get(namespace)
        if lesson is None:
            return True
        lesson.stopping = True
        for job in lesson.jobs.values():
            job.task.cancel()
        watchers = [e.watcher for e in lesson.endpoints.values() if e.watcher is not None]
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*(e.vm.stop() for e in lesson.endpoints.values()), return_exceptions=True)
        await asyncio.gather(*watchers, *(j.task for j in lesson.jobs.values()), return_exceptions=True)
        await asyncio.to_thread(shutil.rmtree, lesson.directory, True)
        self.lessons.pop(namespace, None)
        self._emit(NamespaceGone(namespace))
        return True

    async def list_live_lessons(self) -> list[LiveLessonRecord]:
        return [
            LiveLessonRecord(namespace=lesson.namespace, labels=lesson.labels, annotations=lesson.annotations)
            for lesson in self.lessons.values()
            if not lesson.stopping
        ]

    # ------------------------------------------------------------------ protocol: Jobs
    async def create(self, objects: list[dict[str, Any]]) -> None:
        for job in objects:
            if job.get("kind") != "Job":
                raise RuntimeUnavailable(f"the local runtime creates only Jobs in a live lesson, not {job.get('kind')}")
            namespace, name = job["metadata"]["namespace"], job["metadata"]["name"]
            lesson = self.lessons.get(namespace)
            if lesson is None:
                raise RuntimeUnavailable(f"no live lesson {namespace} on this machine")
            if name in lesson.jobs:
                continue
            entry = LocalJob(dict(job["metadata"].get("labels", {})))
            entry.task = asyncio.create_task(self._run_job(lesson, name, job, entry), name=f"job-{name}")
            lesson.jobs[name] = entry

    async def _run_job(self, lesson: LocalLesson, name: str, job: dict[str, Any], entry: LocalJob) -> None:
        def started(process: asyncio.subprocess.Process) -> None:
            entry.process = process

        if self.sandbox is None and not self.settings.trust_lesson_code:
            outcome = JobOutcome(126, self._refusal())
        else:
            try:
                outcome = await run_job(
                    job, lesson.lesson_dir, lesson.secret, lesson.reach, started, self.sandbox, lesson.directory / JOBS
                )
            except asyncio.CancelledError:
                if entry.process is not None and entry.process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        entry.process.kill()
                raise
            except OSError as exc:
                outcome = JobOutcome(127, f"cannot run the Job: {exc}")
        failed = outcome.exit_code != 0
        phase = "Failed" if failed else "Succeeded"
        self._emit(JobPodObservation(lesson.namespace, name, phase, outcome.message or None))
        self._emit(JobObservation(lesson.namespace, name, succeeded=not failed, failed=failed))

    def _refusal(self) -> str:
        return (
            f"lesson code (configuration scripts and checks) cannot run on this machine: {self.sandbox_problem}. "
            "Install bubblewrap (scripts/setup.sh does) where user namespaces are allowed, or, only for a "
            "curriculum you trust, set SYRINGE_LOCAL__TRUST_LESSON_CODE=true to run it unconfined as "
            f"uid {os.geteuid()}"
        )

    async def delete_jobs(self, namespace: str, label_selector: str) -> None:
        lesson = self.lessons.get(namespace)
        if lesson is None:
            return
        for name, job in list(lesson.jobs.items()):
            if selector_matches(label_selector, job.labels):
                job.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await job.task
                lesson.jobs.pop(name, None)
