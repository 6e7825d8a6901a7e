"""The example lessons' inventory service, served for real on 127.0.0.1: the API a learner and a
configurator call, and the refusals hostile input gets."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from syringe.guest.inventory import MAX_BODY, make_server


@pytest.fixture
def inventory() -> Iterator[httpx.Client]:
    server = make_server("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.server_address[1]}", timeout=5) as client:
            yield client
    finally:
        server.shutdown()
        server.server_close()


def test_the_api_lists_replaces_adds_changes_and_removes_devices(inventory: httpx.Client) -> None:
    assert inventory.get("/api/devices").json() == []
    loaded = inventory.put("/api/devices", json=[{"name": "r1", "stage": 0}, {"name": "r2", "address": "10.0.0.2/24"}])
    assert loaded.status_code == 200 and [d["name"] for d in loaded.json()] == ["r1", "r2"]
    assert inventory.post("/api/devices", json={"name": "sw1", "role": "switch"}).status_code == 201
    assert inventory.post("/api/devices", json={"name": "sw1"}).status_code == 409
    assert inventory.patch("/api/devices/r1", json={"role": "core"}).json() == {
        "name": "r1",
        "stage": 0,
        "role": "core",
    }
    assert inventory.put("/api/devices/r3", json={"platform": "frr"}).status_code == 201
    assert inventory.put("/api/devices/r3", json={"platform": "linux"}).status_code == 200
    assert inventory.delete("/api/devices/r2").status_code == 204
    assert inventory.get("/api/devices/r2").status_code == 404
    assert [d["name"] for d in inventory.get("/api/devices").json()] == ["r1", "sw1", "r3"]
    page = inventory.get("/")
    assert page.headers["content-type"].startswith("text/html") and "<td>sw1</td>" in page.text
    document = inventory.get("/openapi.json").json()
    assert document["openapi"].startswith("3.") and set(document["paths"]) == {"/api/devices", "/api/devices/{name}"}


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("POST", "/api/devices", b'{"name": "r1", "extra": 1}', 400, "unknown field 'extra'"),
        ("POST", "/api/devices", b'{"name": "../etc"}', 400, "name:"),
        ("POST", "/api/devices", b'{"name": "r1", "stage": true}', 400, "stage:"),
        ("POST", "/api/devices", b'{"name": "r1", "address": "999.1.1.1"}', 400, "not an IP address"),
        ("POST", "/api/devices", b"{not json", 400, "not JSON"),
        ("PUT", "/api/devices", b'{"name": "r1"}', 400, "JSON array"),
        ("PUT", "/api/devices", b'[{"name": "a"}, {"name": "a"}]', 400, "same name"),
        ("PUT", "/api/devices/r1", b'{"name": "r2"}', 400, "the body names 'r2'"),
        ("PATCH", "/api/devices/nope", b'{"role": "x"}', 404, "no device 'nope'"),
        ("DELETE", "/api/devices", b"", 405, "use GET, PUT or POST"),
        ("GET", "/etc/passwd", b"", 404, "nothing at /etc/passwd"),
    ],
)
def test_hostile_requests_get_a_4xx_that_says_why(
    inventory: httpx.Client, method: str, path: str, body: bytes, status: int, says: str
) -> None:
    answer = inventory.request(method, path, content=body)
    assert answer.status_code == status and says in answer.json()["error"], answer.text


def test_a_body_over_the_limit_is_refused_unread(inventory: httpx.Client) -> None:
    answer = inventory.post("/api/devices", content=b"[" + b" " * MAX_BODY + b"]")
    assert answer.status_code == 413 and "at most" in answer.json()["error"]
    assert inventory.get("/api/devices").status_code == 200  # still serving
