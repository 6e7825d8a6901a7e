"""The read-only catalog API, in-process over httpx."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
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
        ("", ["linux-basics", "netconf-basics", "rest-api-basics", "routing-triangle", "static-routing", "two-hosts"]),
        ("?category=tools", ["netconf-basics", "rest-api-basics"]),
        ("?tag=netconf", ["netconf-basics"]),
        (
            "?collection=syringe-basics&category=fundamentals",
            ["linux-basics", "routing-triangle", "static-routing", "two-hosts"],
        ),
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
    assert curriculum["lessonCount"] == 6


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
    assert client.get("/healthz").json() == {"status": "ok", "lessons": 6}
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/lessons/{slug}/prerequisites" in paths


def test_curriculum_with_problems_refuses_to_start(tmp_path: Path) -> None:
    root = write_curriculum(tmp_path)
    edit_lesson(root, "triangle", "    port: 830", "    port: 0")
    with pytest.raises(CurriculumRefused) as refused:
        create_app(Settings(curriculum=root))
    assert refused.value.tree.problems[0].field == "endpoints[1].presentations[1].port"


# ------------------------------------------------------------------------- an untrusted curriculum's guides


@pytest.fixture
def curriculum(tmp_path: Path) -> Path:
    (tmp_path / "curriculum").mkdir()
    return write_curriculum(tmp_path / "curriculum")


@contextmanager
def served(root: Path, **settings: object) -> Iterator[httpx.Client]:
    with TestClient(create_app(Settings(curriculum=root, **settings))) as c:  # type: ignore[arg-type]
        yield c


GUIDE = "/api/v1/lessons/basics/stages/0/guide"


def test_a_guide_that_became_a_link_to_proc_self_environ_is_a_problem_not_the_environment(curriculum: Path) -> None:
    with served(curriculum) as client:
        guide = curriculum / "lessons/basics/stage0/guide.md"
        guide.unlink()
        guide.symlink_to("/proc/self/environ")  # after validation: the tree changed under the service
        response = client.get(GUIDE)
        assert response.status_code == 503
        assert response.headers["content-type"] == PROBLEM
        body = response.json()
        assert body["type"] == "https://syringe.dev/problems/guide-unavailable"
        assert "lessons/basics/stage0/guide.md is a symbolic link" in body["detail"]
        assert "PATH=" not in response.text
        assert os.environ["PATH"] not in response.text


def test_a_guide_that_became_a_fifo_is_a_problem_and_never_hangs(curriculum: Path) -> None:
    guide = curriculum / "lessons/basics/stage0/guide.md"
    answers: list[httpx.Response] = []
    with served(curriculum) as client:
        guide.unlink()
        os.mkfifo(guide)
        asking = threading.Thread(target=lambda: answers.append(client.get(GUIDE)), daemon=True)
        asking.start()
        asking.join(10)
        with contextlib.suppress(OSError):  # the old code blocked opening the FIFO: a writer frees it
            os.close(os.open(guide, os.O_WRONLY | os.O_NONBLOCK))
        asking.join(10)
    assert answers and answers[0].status_code == 503
    assert "is a FIFO" in answers[0].json()["detail"]


def test_a_guide_that_is_not_utf8_is_a_problem_not_a_server_error(curriculum: Path) -> None:
    with served(curriculum) as client:
        (curriculum / "lessons/basics/stage0/guide.md").write_bytes(b"# caf\xe9\n")
        response = client.get(GUIDE)
        assert response.status_code == 503
        assert "not UTF-8" in response.json()["detail"]


HOSTILE_GUIDE = """# Hello

<button onclick="runSnippetInTab('linux1', this)" class="btn">Run this snippet</button>
<script>fetch('/steal?' + document.cookie)</script>
<a href="javascript:alert(1)">click</a> <a href="https://nrelabs.io">home</a>
<img src="diagram.png" onerror="alert(1)">
"""


def test_guides_keep_their_html_unless_the_operator_sanitises_them(curriculum: Path) -> None:
    (curriculum / "lessons/basics/stage0/guide.md").write_text(HOSTILE_GUIDE)
    with served(curriculum) as client:
        html = client.get(GUIDE).json()["html"]
        assert "<script>" in html and 'onclick="runSnippetInTab' in html  # as Antidote served them
    with served(curriculum, sanitize_guides=True) as client:
        html = client.get(GUIDE).json()["html"]
        assert "<h1>Hello</h1>" in html
        assert '<a href="https://nrelabs.io"' in html and '<img src="diagram.png">' in html
        for gone in ("<script", "onclick", "onerror", "javascript:", "document.cookie"):
            assert gone not in html
