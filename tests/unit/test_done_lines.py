"""The configuration Jobs' done line: how the plan hands out the token and how the runtime spots the line."""

from __future__ import annotations

from syringe.plan import jobenv
from syringe.runtime.kubernetes.following import LineScanner, container_running, done_token

WANTED = jobenv.done_line("ab12")


def test_the_line_is_found_whole_across_chunks() -> None:
    scanner = LineScanner(WANTED)
    assert not scanner.feed(b"$ ip route\nconfigured r1\nSYRINGE-JOB-")
    assert scanner.feed(b"DONE ab12\n")


def test_a_line_must_be_exactly_the_done_line() -> None:
    for near in (b"xSYRINGE-JOB-DONE ab12\n", b"SYRINGE-JOB-DONE ab123\n", b"SYRINGE-JOB-DONE ab1\n"):
        assert not LineScanner(WANTED).feed(near)
    assert not LineScanner(WANTED).feed(WANTED.encode())  # not yet a whole line
    assert LineScanner(WANTED).feed(WANTED.encode() + b"\r\n")


def test_an_overlong_line_is_skipped_and_never_kept() -> None:
    scanner = LineScanner(WANTED, limit=64)
    assert not scanner.feed(b"x" * 1000)
    assert not scanner.feed(WANTED.encode() + b"\n")  # the tail of the overlong line, not a line of its own
    assert len(scanner._line) == 0
    assert scanner.feed(WANTED.encode() + b"\n")


def test_the_token_and_the_container_come_from_the_pod() -> None:
    pod = {
        "spec": {"containers": [{"name": "configure", "env": [{"name": jobenv.DONE_TOKEN, "value": "ab12"}]}]},
        "status": {"containerStatuses": [{"name": "configure", "state": {"running": {}}}]},
    }
    assert done_token(pod) == ("configure", "ab12")
    assert container_running(pod, "configure")
    assert done_token({"spec": {"containers": [{"name": "c", "env": [{"name": "OTHER", "value": "x"}]}]}}) is None
    assert not container_running({"status": {"containerStatuses": [{"name": "configure", "state": {}}]}}, "configure")
