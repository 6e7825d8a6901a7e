"""The web front end in a real browser (Debian's chromium, driven by playwright-core) against the real
`syringe serve` on the embedded default: real QEMU VMs behind the terminal, the diagram and the checks."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.conftest import INSTANCE, drive, publish
from tests.local.conftest import qemu_processes

# What a test may show as the page's own problems: none but a failed request the test caused on purpose.
CSP = re.compile("Content Security Policy", re.IGNORECASE)
pytestmark = pytest.mark.browser


def assert_clean(answer: dict[str, Any]) -> None:
    assert answer["pageErrors"] == [], answer["pageErrors"]
    assert [m for m in answer["consoleProblems"] if CSP.search(m)] == [], "the page broke its own CSP"


def serious(violations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [v for v in violations if v["impact"] in ("serious", "critical")]


def test_catalog_groups_searches_and_says_which_lessons_cannot_run_here(served: str) -> None:
    answer = drive("catalog", served)
    assert_clean(answer)
    assert answer["categories"] == ["Fundamentals", "Tools"]
    assert "Collection: Syringe Basics" in answer["collections"]
    cards = {card["slug"]: card for card in answer["cards"]}
    assert cards["two-hosts"]["facts"] == {
        "Prerequisites": "none",
        "Endpoints": "linux1 (utility), linux2 (utility)",
        "Stages": "2",
    }
    assert cards["static-routing"]["facts"]["Prerequisites"] == "Two Hosts and a Link"
    # No local: section, so no local VM: said on the card, and nothing to click.
    assert cards["cluster-lab"]["launch"] is False
    assert "endpoint switch: image cluster-switch cannot run without a cluster" in cards["cluster-lab"]["cannot"]
    assert cards["two-hosts"]["launch"] is True and cards["two-hosts"]["cannot"] is None
    assert answer["searchNetconf"] == ["netconf-basics"]  # by name
    assert sorted(answer["searchTagDemo"]) == ["cluster-lab", "missing-disk"]  # by tag
    assert serious(answer["axe"]) == [], answer["axe"]
    assert answer["firstFocus"]["outline"] not in ("none", ""), answer["firstFocus"]
    assert answer["narrowOverflows"] is False
    print("paint", answer["paint"])  # reported, never asserted: no wall-clock assertions
    publish("catalog.png")


def test_journey_on_two_hosts_launch_terminal_ping_stage_checks_delete(served: str) -> None:
    answer = drive("journey", served, timeout=900)
    assert_clean(answer)
    assert answer["hash"] == "#/lesson/two-hosts" and answer["tokenInUrl"] is False
    # Progress came from the event stream: a step and a count of healthy endpoints with the elapsed time.
    assert answer["steps"], answer
    assert all(re.fullmatch(r"[0-2] of 2 endpoints healthy · \d+:\d\d elapsed", c) for c in answer["counts"]), answer
    for expected in ("linux1", "linux2", "net1", "10.12.0.1/24", "10.12.0.2/24", "10.12.0.0/24", "reachable"):
        assert expected in answer["diagramText"], answer["diagramText"]
    assert answer["selectedTab"] == "linux1 · cli"
    assert re.search(r"2 packets transmitted, 2 (packets )?received", answer["pingLine"])
    assert "ip address" in answer["snippets"]
    assert "token" not in answer["frame"]["url"] and "/endpoints/linux2/http/web/" in answer["frame"]["url"]
    assert answer["frame"]["text"].strip(), answer["frame"]
    assert answer["afterArrow"] == "linux2 · cli"
    assert re.fullmatch(r"Expires in \d+:\d\d(:\d\d)?", answer["expiry"]), answer["expiry"]
    assert re.fullmatch(r"Expires in \d+:\d\d(:\d\d)?", answer["expiryAfterExtend"]), answer["expiryAfterExtend"]
    # (CONFIGURATION may come and go between two events of the stream: only the end is certain.)
    assert answer["pills"][-1] == "Ready", answer["pills"]
    assert answer["checksBefore"] == [
        {"check": "reach-linux2", "passed": True},
        {"check": "note-left", "passed": False},
    ]
    assert answer["checksAfter"] == [
        {"check": "reach-linux2", "passed": True},
        {"check": "note-left", "passed": True},
    ]
    assert serious(answer["axe"]) == [], answer["axe"]
    assert answer["narrowOverflows"] is False
    assert answer["leftAfterEnd"] == []
    assert qemu_processes(f"syringe.{INSTANCE}-") == [], "the lesson ended, but its VMs remain"
    publish("progress.png")
    publish("lesson.png")


def test_a_lesson_whose_endpoint_cannot_start_shows_the_reason_and_a_retry(served: str) -> None:
    answer = drive("error", served)
    assert_clean(answer)
    for seen in (answer["first"], answer["second"]):
        assert "The lesson could not start" in seen
        assert "endpoint router: image router-disk: disk image" in seen, seen
    assert answer["retryButton"][0] == "Retry"
    assert serious(answer["axe"]) == [], answer["axe"]
    # Retry is a new launch, not the failed one again.
    assert len(answer["firstIds"]) == 1 and len(answer["secondIds"]) == 1
    assert answer["firstIds"] != answer["secondIds"]
