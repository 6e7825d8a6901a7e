"""The web front end's routes and the read-only answers it needs: `/` and its assets (with a strict CSP), the
lesson topology, and which lessons can run on this runtime."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from syringe.settings import LocalSettings, PlanSettings, Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def curriculum(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example curriculum, and a lesson whose switch has no local VM."""
    root = tmp_path_factory.mktemp("ui") / "lessons"
    shutil.copytree(REPO / "lessons", root)
    (root / "images/cluster-switch").mkdir()
    (root / "images/cluster-switch/image.meta.yaml").write_text("slug: cluster-switch\nsshUser: antidote\n")
    (root / "lessons/cluster-lab/stage0").mkdir(parents=True)
    (root / "lessons/cluster-lab/stage0/guide.md").write_text("# guide\n")
    (root / "lessons/cluster-lab/lesson.meta.yaml").write_text(
        "name: Cluster lab\nslug: cluster-lab\ncategory: tools\nendpoints:\n"
        "- {name: host, image: utility, presentations: [{name: cli, port: 22, type: ssh}]}\n"
        "- {name: switch, image: cluster-switch, presentations: [{name: cli, port: 22, type: ssh}]}\n"
        "stages:\n- description: only\n"
    )
    return root


@pytest.fixture(scope="module")
def client(curriculum: Path) -> Iterator[httpx.Client]:
    settings = Settings(curriculum=curriculum, plan=PlanSettings(instance="uiunit"))
    with TestClient(create_app(settings)) as c:
        yield c


def test_the_page_and_its_assets_carry_a_strict_csp(client: httpx.Client) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "'unsafe-eval'" not in csp
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "connect-src 'self'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert '<script type="module" src="/ui/app.js">' in page.text and "<script>" not in page.text
    script = client.get("/ui/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert client.head("/").status_code == 200


@pytest.mark.parametrize("path", ["/ui/..%2Fapp.py", "/ui/.hidden.js", "/ui/__init__.py", "/ui/nothing.js", "/ui/"])
def test_hostile_or_unknown_asset_paths_are_a_plain_404(client: httpx.Client, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


def test_unknown_api_paths_are_still_the_json_404(client: httpx.Client) -> None:
    answer = client.get("/api/v1/nothing-here")
    assert answer.status_code == 404 and answer.json()["type"].endswith("/not-found")


def test_topology_names_both_sides_interfaces_and_addresses(client: httpx.Client) -> None:
    two_hosts = client.get("/api/v1/lessons/two-hosts/topology").json()
    assert [e["name"] for e in two_hosts["endpoints"]] == ["linux1", "linux2"]
    assert two_hosts["links"] == [
        {
            "index": 0,
            "subnet": "10.12.0.0/24",
            "a": {"endpoint": "linux1", "interface": "net1", "address": "10.12.0.1/24"},
            "b": {"endpoint": "linux2", "interface": "net1", "address": "10.12.0.2/24"},
        }
    ]
    # The image's own interface names win (frr: eth1, eth2, ...).
    triangle = client.get("/api/v1/lessons/routing-triangle/topology").json()
    assert {link["a"]["interface"] for link in triangle["links"]} <= {"eth1", "eth2"}
    assert client.get("/api/v1/lessons/no-such/topology").status_code == 404


def test_stages_say_how_many_checks_they_have(client: httpx.Client) -> None:
    stages = client.get("/api/v1/lessons/two-hosts").json()["stages"]
    assert [s["checkCount"] for s in stages] == [1]


def test_runtime_says_which_lessons_cannot_run_locally_and_why(client: httpx.Client) -> None:
    runtime = client.get("/api/v1/runtime").json()
    assert runtime["available"] is True and runtime["problem"] is None
    lessons = {entry["slug"]: entry for entry in runtime["lessons"]}
    assert lessons["two-hosts"] == {"slug": "two-hosts", "runnable": True, "reasons": []}
    assert lessons["cluster-lab"]["runnable"] is False
    assert lessons["cluster-lab"]["reasons"] == [
        "endpoint switch: image cluster-switch cannot run without a cluster: its image.meta.yaml has no local: "
        "section (kind tiny-linux, disk or kernel)"
    ]


def test_without_a_runtime_no_lesson_is_runnable_and_the_reason_is_given(curriculum: Path) -> None:
    settings = Settings(curriculum=curriculum, local=LocalSettings(enabled=False))
    with TestClient(create_app(settings)) as c:
        runtime = c.get("/api/v1/runtime").json()
    assert runtime["available"] is False
    assert "no Kubernetes cluster configured" in runtime["problem"]
    assert all(not entry["runnable"] and entry["reasons"] == [runtime["problem"]] for entry in runtime["lessons"])


def test_the_terminal_speaks_the_servers_subprotocols() -> None:
    """The front end offers the subprotocols api/deps.py reads (it cannot import them)."""
    from api.deps import BEARER_PROTOCOL_PREFIX, TERMINAL_PROTOCOL

    source = (REPO / "ui" / "src" / "terminal.js").read_text()
    assert f'const TERMINAL_PROTOCOL = "{TERMINAL_PROTOCOL}";' in source
    assert f'const BEARER_PROTOCOL_PREFIX = "{BEARER_PROTOCOL_PREFIX}";' in source
    assert "token=" not in source
