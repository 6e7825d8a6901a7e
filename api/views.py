"""Live lessons as the API shows them, rendered from memory (and cached until they change)."""

from __future__ import annotations

from api.schemas_live import (
    Access,
    CheckResult,
    EndpointStatus,
    External,
    GuideRef,
    LiveLessonView,
    NetconfAccess,
    PresentationStatus,
    VerificationView,
)
from syringe.access.proxy_origin import proxy_url
from syringe.curriculum.models import Image, Presentation
from syringe.livelessons import LiveLesson, LiveLessons
from syringe.runtime.base import EndpointObservation
from syringe.settings import AccessSettings


def access_for(
    ll: LiveLesson,
    endpoint: str,
    presentation: Presentation,
    image: Image | None,
    settings: AccessSettings,
    external: External | None,
) -> Access:
    base = f"/api/v1/livelessons/{ll.id}/endpoints/{endpoint}"
    user = image.ssh_user if image else ""
    password = image.ssh_password if image and settings.expose_credentials else None
    access = Access()
    if presentation.type == "ssh":
        access.terminal_url = f"{base}/terminal?presentation={presentation.name}"
        access.username, access.password = user, password
    elif presentation.type == "http":
        access.proxy_url = proxy_url(settings.proxy_origin_template, ll.id, endpoint, presentation.name)
    elif presentation.type == "netconf":
        access.netconf = NetconfAccess(
            rpc_url=f"{base}/netconf/{presentation.name}/rpc",
            port=presentation.port,
            username=user,
            password=password,
        )
    access.external = external
    return access


def external_for(presentation: Presentation, observation: EndpointObservation | None, exposed: bool) -> External | None:
    """Where the learner's own client reaches the presentation, as the runtime describes it (an exposed
    Service's node port, or a port forwarded on this machine). ``exposed``: the plan exposes this
    presentation, so it is shown even while its external port is not known yet."""
    exposure = observation.exposure if observation is not None else None
    if exposure is None:
        return None
    port = exposure.ports.get(presentation.port)
    if port is None and (exposure.complete or not exposed):
        return None
    return External(host=exposure.host, port=port)


def livelesson_view(ll: LiveLesson, manager: LiveLessons, settings: AccessSettings) -> LiveLessonView:
    source = manager.tree.lessons.get(ll.lesson)
    endpoints = []
    if source is not None:
        for endpoint in source.lesson.endpoints:
            state = ll.endpoints.get(endpoint.name)
            observation = state.observation if state else None
            endpoints.append(
                EndpointStatus(
                    name=endpoint.name,
                    image=endpoint.image,
                    phase=state.phase if state else "pending",
                    healthy=bool(state and state.healthy),
                    reason=observation.reason if observation else None,
                    presentations=[
                        PresentationStatus(
                            name=p.name,
                            type=p.type,
                            port=p.port,
                            reachable=bool(state and p.port in state.reachable),
                            access=access_for(
                                ll,
                                endpoint.name,
                                p,
                                manager.tree.images.get(endpoint.image),
                                settings,
                                external_for(p, observation, p.type in manager.plan_settings.expose),
                            ),
                        )
                        for p in endpoint.presentations
                    ],
                    additional_ports=list(endpoint.additional_ports),
                )
            )
    stages = source.lesson.stages if source else []
    stage = stages[ll.stage] if 0 <= ll.stage < len(stages) else None
    return LiveLessonView(
        id=ll.id,
        lesson=ll.lesson,
        session=ll.session,
        status="DELETING" if ll.deleting else ll.status.value,
        error=ll.error,
        stage=ll.stage,
        stage_count=len(stages),
        stage_description=stage.description if stage else "",
        guide=GuideRef(type=stage.guide_type if stage else "markdown", url=f"/api/v1/livelessons/{ll.id}/guide"),
        healthy=ll.healthy,
        total=ll.total,
        created_at=ll.created_at,
        updated_at=ll.updated_at,
        expires_at=ll.expires_at,
        endpoints=endpoints,
        verification=(
            VerificationView(
                stage=ll.verification.stage,
                status=ll.verification.status,
                error=ll.verification.error,
                results=[CheckResult(**result) for result in ll.verification.results],
            )
            if ll.verification is not None
            else None
        ),
    )


class ViewCache:
    """Serialised views by live-lesson id and version: a status poll re-renders nothing that did not change."""

    def __init__(self, settings: AccessSettings) -> None:
        self.settings = settings
        self._cache: dict[str, tuple[int, bytes]] = {}

    def json(self, ll: LiveLesson, manager: LiveLessons) -> bytes:
        cached = self._cache.get(ll.id)
        if cached is not None and cached[0] == ll.version:
            return cached[1]
        body = livelesson_view(ll, manager, self.settings).model_dump_json(by_alias=True).encode()
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[ll.id] = (ll.version, body)
        return body
