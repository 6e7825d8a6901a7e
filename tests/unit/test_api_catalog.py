"""The read-only catalog API, in-process over httpx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import CurriculumRefused, create_app
from syringe.settings import Settings
from tests.corpus import edit_lesson, write_curriculum

REPO = Path(__file__).resolve().parents[2]
PROBLEM = "application/problem+json"


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    app = create_app(Settings(curriculum=REPO / "lessons"))
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize(
    ("query", "slugs"),
    [
        ("", ["linux-basics", "netconf-basics", "rest-api-basics", "routing-triangle", "two-hosts"]),
        ("?category=tools", ["netconf-basics", "rest-api-basics"]),
        ("?tag=netconf", ["netconf-basics"]),
        ("?collection=syringe-basics&category=fundamentals", ["linux-basics", "routing-triangle", "two-hosts"]),
        ("?tag=nothing", []),
    ],
)
def test_lessons_filter(client: httpx.Client, query: str, slugs: list[str]) -> None:
    response = client.get(f"/api/v1/lessons{query}")
    assert response.status_code == 200
    assert [lesson["slug"] for lesson in response.json()] == slugs


def test_one_lesson_with_stages_and_endpoints(client: httpx.Client) -> None:
    lesson = client.get("/api/v1/lessons/netconf-basics").json()
    assert lesson["stageCount"] == 3
    assert [s["guideUrl"] for s in lesson["stages"]][2] == "/api/v1/lessons/netconf-basics/stages/2/guide"
    vr1 = next(e for e in lesson["endpoints"] if e["name"] == "vr1")
    assert {p["type"] for p in vr1["presentations"]} == {"ssh", "netconf"}
    assert lesson["connections"] == [{"a": "vr1", "b": "vr2", "subnet": None}]


def test_guides_render_markdown_and_notebooks(client: httpx.Client) -> None:
    markdown = client.get("/api/v1/lessons/linux-basics/stages/0/guide").json()
    assert markdown["guideType"] == "markdown"
    assert "<h1>Using the Bash shell</h1>" in markdown["html"]
    notebook = client.get("/api/v1/lessons/rest-api-basics/stages/1/guide").json()
    assert notebook["guideType"] == "jupyter"
    assert '<code class="language-python">import requests' in notebook["html"]


def test_prerequisites_are_transitive_deduplicated_and_ordered(tmp_path: Path) -> None:
    root = write_curriculum(tmp_path)
    extra = (root / "lessons/basics/lesson.meta.yaml").read_text().replace("slug: basics", "slug: advanced")
    (root / "lessons/advanced").mkdir()
    (root / "lessons/advanced/lesson.meta.yaml").write_text(
        extra.replace("category:", "prereqs: [triangle, basics]\ncategory:")
    )
    (root / "lessons/advanced/stage0").mkdir()
    (root / "lessons/advanced/stage0/guide.md").write_text("# x\n")
    app = create_app(Settings(curriculum=root))
    with TestClient(app) as c:
        slugs = [lesson["slug"] for lesson in c.get("/api/v1/lessons/advanced/prerequisites").json()]
    assert slugs == ["basics", "triangle"]


def test_images_never_show_passwords(client: httpx.Client) -> None:
    body = client.get("/api/v1/images").text
    assert "antidotepassword" not in body
    assert "Password" not in body
    assert client.get("/api/v1/images/frr").json()["networkInterfaces"] == ["eth1", "eth2", "eth3"]


def test_collections_and_curriculum(client: httpx.Client) -> None:
    collections = client.get("/api/v1/collections").json()
    assert collections[0]["slug"] == "syringe-basics"
    assert "linux-basics" in collections[0]["lessons"]
    assert client.get("/api/v1/collections/syringe-basics").status_code == 200
    curriculum = client.get("/api/v1/curriculum").json()
    assert curriculum["name"] == "syringe-examples"
    assert curriculum["lessonCount"] == 5


@pytest.mark.parametrize(
    ("url", "status", "kind"),
    [
        ("/api/v1/lessons/nope", 404, "lesson-not-found"),
        ("/api/v1/lessons/nope/prerequisites", 404, "lesson-not-found"),
        ("/api/v1/lessons/linux-basics/stages/7/guide", 404, "lesson-not-found"),
        ("/api/v1/lessons/linux-basics/stages/x/guide", 422, "invalid-request"),
        ("/api/v1/collections/nope", 404, "collection-not-found"),
        ("/api/v1/images/nope", 404, "image-not-found"),
        ("/api/v1/nothing-here", 404, "not-found"),
    ],
)
def test_errors_are_problem_documents(client: httpx.Client, url: str, status: int, kind: str) -> None:
    response = client.get(url)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == f"https://syringe.dev/problems/{kind}"
    assert body["status"] == status
    assert body["detail"]


def test_wrong_method_is_a_problem_too(client: httpx.Client) -> None:
    response = client.delete("/api/v1/lessons")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM


def test_health_and_openapi(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "lessons": 5}
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/lessons/{slug}/prerequisites" in paths


def test_curriculum_with_problems_refuses_to_start(tmp_path: Path) -> None:
    root = write_curriculum(tmp_path)
    edit_lesson(root, "triangle", "    port: 830", "    port: 0")
    with pytest.raises(CurriculumRefused) as refused:
        create_app(Settings(curriculum=root))
    assert refused.value.tree.problems[0].field == "endpoints[1].presentations[1].port"
