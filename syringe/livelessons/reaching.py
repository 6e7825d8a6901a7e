"""Reaching a live lesson's endpoints: where each presentation is, as the runtime describes it, and with
which credentials. Never asks which runtime it is."""

from __future__ import annotations

from syringe.access.probes import Target
from syringe.curriculum import CurriculumTree
from syringe.errors import Busy, NotFound
from syringe.livelessons.model import EndpointState, LiveLesson


def address(endpoint: EndpointState) -> str | None:
    """The host Syringe dials for this endpoint, once the runtime can say."""
    seen = endpoint.observation
    return seen.reach.host if seen is not None and seen.reach is not None else None


def probe_targets(
    tree: CurriculumTree, ll: LiveLesson, endpoint_name: str, http_probe_path: str
) -> dict[int, tuple[str, Target]]:
    """Port -> (presentation name, probe target) for one endpoint: presentations by protocol, the
    additional ports by TCP."""
    endpoint = tree.lessons[ll.lesson].lesson.endpoint(endpoint_name)
    seen = ll.endpoints[endpoint_name].observation
    reach = seen.reach if seen is not None else None
    assert reach is not None, f"{endpoint_name} is not reachable yet"
    image = tree.images.get(endpoint.image)
    user, password = (image.ssh_user, image.ssh_password) if image else ("", "")
    targets: dict[int, tuple[str, Target]] = {}
    for presentation in endpoint.presentations:
        target = Target(reach.host, reach.port(presentation.port), presentation.type, user, password, http_probe_path)
        targets.setdefault(presentation.port, (presentation.name, target))
    for port in endpoint.additional_ports:
        targets.setdefault(port, (f"port {port}", Target(reach.host, reach.port(port), "tcp")))
    return targets


def target_for(tree: CurriculumTree, ll: LiveLesson, endpoint: str, presentation: str, http_probe_path: str) -> Target:
    """Where and with which credentials to reach one presentation of a live lesson's endpoint."""
    if endpoint not in ll.endpoints:
        raise NotFound(f"live lesson {ll.id} has no endpoint '{endpoint}'")
    state = ll.endpoints[endpoint]
    if address(state) is None or not state.running:
        raise Busy(f"endpoint {endpoint} of live lesson {ll.id} is not running yet")
    for name, target in probe_targets(tree, ll, endpoint, http_probe_path).values():
        if name == presentation:
            return target
    raise NotFound(f"endpoint {endpoint} has no presentation '{presentation}'")
