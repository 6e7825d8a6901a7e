"""An untrusted curriculum (a community pull request) cannot read outside itself, exhaust memory, hang or
crash the loader, put script URLs in front of learners, or grant itself privilege. Every hostile tree is
built here, in tmp_path, at test time: links, FIFOs, devices, sockets, deep trees, huge sparse files."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from syringe.cli import main
from syringe.curriculum import load_curriculum
from syringe.curriculum.files import read_lesson_files
from syringe.plan import LiveLessonIdentity, PlanSettings, build_plan
from tests.corpus import edit_lesson, write_curriculum

WHO = LiveLessonIdentity(id="ll1", session="s1", created_at=datetime(2026, 1, 1, tzinfo=UTC))
SECRET = "s3cr3t-that-must-never-leave"
GIB = 1024**3


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "curriculum").mkdir()
    return write_curriculum(tmp_path / "curriculum")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the curriculum holding a secret, as /etc would."""
    directory = tmp_path / "outside"
    directory.mkdir()
    (directory / "secret").write_text(SECRET)
    return directory


def problems_of(root: Path) -> list[str]:
    return [str(problem) for problem in load_curriculum(root).problems]


def _only(problems: list[str], where: str, reason: str) -> None:
    matching = [p for p in problems if p.startswith(where) and reason in p]
    assert matching, f"no '{reason}' at {where} in {problems}"


def finishes(work: Callable[[], object], unblock: Callable[[], None], seconds: float = 10.0) -> bool:
    """Whether ``work`` returns within ``seconds``; ``unblock`` then frees a thread the old code left hanging."""
    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(seconds)
    done = not thread.is_alive()
    unblock()
    return done


def open_writer(fifo: Path) -> None:
    """A reader blocked opening ``fifo`` returns once a writer opens it."""
    with contextlib.suppress(OSError):
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))


@pytest.fixture
def deep_tree() -> Iterator[Callable[[Path, int], None]]:
    """Makes ``levels`` nested directories under a top, one by one (os.makedirs itself recurses), and
    removes them after the test the same way: pytest's own clean-up of tmp_path (shutil.rmtree) recurses
    and would crash on them in a later run."""
    made: list[Path] = []

    def make(top: Path, levels: int) -> None:
        path = top
        path.mkdir(exist_ok=True)
        for _ in range(levels):
            path = path / "d"
            path.mkdir()
            made.append(path)
        (path / "leaf.txt").write_text("deep\n")
        made.append(path / "leaf.txt")

    yield make
    for path in reversed(made):
        path.rmdir() if path.is_dir() else path.unlink()


def plan_text(root: Path, files: dict[str, bytes]) -> str:
    tree = load_curriculum(root)
    source = tree.lessons["triangle"]
    plan = build_plan(source.lesson, tree.images, 0, WHO, PlanSettings(), files)
    return repr(plan.objects)


# ------------------------------------------------------------------------- 1. files that leave the lesson


def test_a_guide_linked_to_proc_self_environ_is_a_problem(root: Path) -> None:
    guide = root / "lessons/basics/stage0/guide.md"
    guide.unlink()
    guide.symlink_to("/proc/self/environ")
    problems = problems_of(root)
    _only(problems, "lessons/basics/stage0/guide.md", "is a symbolic link")
    assert not [p for p in problems if "missing stage guide" in p], "a link is reported as a link, once"


def test_a_link_is_refused_even_when_it_points_inside_the_lesson(root: Path) -> None:
    lesson = root / "lessons/basics"
    (lesson / "README.md").write_text("# notes\n")
    (lesson / "stage0/notes.md").symlink_to("../README.md")
    _only(problems_of(root), "lessons/basics/stage0/notes.md", "is a symbolic link")


def test_a_config_linked_outside_is_a_problem_and_never_reaches_the_plan(root: Path, outside: Path) -> None:
    config = root / "lessons/triangle/stage0/configs/r1.py"
    config.unlink()
    config.symlink_to(outside / "secret")
    _only(problems_of(root), "lessons/triangle/stage0/configs/r1.py", "is a symbolic link")
    # The tree can change after validation: reading holds to the rule on its own.
    config.unlink()
    config.write_text("print('configured')\n")
    source = load_curriculum(root).lessons["triangle"]
    config.unlink()
    config.symlink_to(outside / "secret")
    files = read_lesson_files(source)
    assert "stage0/configs/r1.py" not in files
    assert "stage0/guide.md" in files
    assert SECRET not in plan_text(root, files)


def test_a_stage_directory_linked_outside_is_refused(root: Path, outside: Path) -> None:
    stage = root / "lessons/triangle/stage1"
    for name in ("guide.ipynb", "configs/r1.py", "configs/r2-eos.txt"):
        (outside / name).parent.mkdir(exist_ok=True)
        (outside / name).write_text(SECRET)
    source = load_curriculum(root).lessons["triangle"]
    for path in sorted(stage.rglob("*"), reverse=True):
        path.rmdir() if path.is_dir() else path.unlink()
    stage.rmdir()
    stage.symlink_to(outside)
    _only(problems_of(root), "lessons/triangle/stage1", "is a symbolic link")
    files = read_lesson_files(source)
    assert not [name for name in files if name.startswith("stage1/")]
    assert SECRET.encode() not in b"".join(files.values())


def test_a_lesson_directory_linked_outside_is_refused(root: Path, outside: Path) -> None:
    (outside / "lesson.meta.yaml").write_text((root / "lessons/basics/lesson.meta.yaml").read_text())
    (root / "lessons/elsewhere").symlink_to(outside)
    _only(problems_of(root), "lessons/elsewhere", "is a symbolic link")


def test_metafiles_and_image_directories_that_are_links_are_refused(root: Path, outside: Path) -> None:
    (outside / "image.meta.yaml").write_text("slug: evil\n")
    (root / "images/evil").symlink_to(outside)
    metafile = root / "lessons/basics/lesson.meta.yaml"
    (outside / "lesson.meta.yaml").write_text(metafile.read_text())
    metafile.unlink()
    metafile.symlink_to(outside / "lesson.meta.yaml")
    tree = load_curriculum(root)
    problems = [str(p) for p in tree.problems]
    _only(problems, "images/evil", "is a symbolic link")
    _only(problems, "lessons/basics/lesson.meta.yaml", "is a symbolic link")
    assert "evil" not in tree.images
    assert "basics" not in tree.lessons


@pytest.fixture
def fifo(root: Path) -> Iterator[Path]:
    path = root / "lessons/triangle/stage0/pipe"
    yield path
    open_writer(path)


def test_a_fifo_is_a_problem_and_reading_never_hangs_on_one(root: Path, fifo: Path) -> None:
    source = load_curriculum(root).lessons["triangle"]
    os.mkfifo(fifo)
    _only(problems_of(root), "lessons/triangle/stage0/pipe", "is a FIFO")
    files: dict[str, bytes] = {}
    assert finishes(lambda: files.update(read_lesson_files(source)), lambda: open_writer(fifo))
    assert "stage0/pipe" not in files
    assert "stage0/guide.md" in files


def test_devices_and_sockets_are_problems_and_never_read(root: Path) -> None:
    source = load_curriculum(root).lessons["triangle"]
    stage = root / "lessons/triangle/stage0"
    try:
        os.mknod(stage / "null", 0o644 | 0o020000, os.makedev(1, 3))  # /dev/null's own numbers
    except PermissionError:
        pytest.fail("creating a device node needs CAP_MKNOD (run the test command as root)", pytrace=False)
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(stage / "sock"))
        problems = problems_of(root)
        files = read_lesson_files(source)
    _only(problems, "lessons/triangle/stage0/null", "is a device")
    _only(problems, "lessons/triangle/stage0/sock", "is a socket")
    assert "stage0/null" not in files
    assert "stage0/sock" not in files


def test_check_scripts_stay_in_their_stage(root: Path) -> None:
    check = "  verify:\n  - name: c1\n    endpoint: linux1\n    script: {}\n"
    edit_lesson(root, "basics", "- description: only\n", "- description: only\n" + check.format("/etc/passwd"))
    problems = problems_of(root)
    _only(problems, "lessons/basics/lesson.meta.yaml:16:5: stages[0].verify[0].script:", "leaves stage0/checks/")
    edit_lesson(root, "basics", "script: /etc/passwd", "script: ../../../triangle/stage0/configs/r1.py")
    _only(problems_of(root), "lessons/basics/lesson.meta.yaml:16:5: stages[0].verify[0].script:", "leaves")


@pytest.mark.parametrize(
    ("local", "field", "reason"),
    [
        ("  kind: disk\n  disk: /etc/passwd\n", "local.disk", "SYRINGE_LOCAL__IMAGE_DIRS (none is listed)"),
        ("  kind: disk\n  disk: ../linux/image.meta.yaml\n", "local.disk", "leaves the image's directory"),
        ("  kind: kernel\n  kernel: /boot/vmlinuz\n  initrd: initrd.img\n", "local.kernel", "outside the image's"),
        ("  kind: kernel\n  kernel: vmlinuz\n  initrd: ../../x\n", "local.initrd", "leaves the image's directory"),
        ("  kind: kernel\n  kernel: linked\n  initrd: initrd.img\n", "local.kernel", "is a symbolic link"),
    ],
)
def test_image_local_files_stay_in_the_image_directory(
    root: Path, outside: Path, local: str, field: str, reason: str
) -> None:
    image = root / "images/linux"
    (image / "linked").symlink_to(outside / "secret")
    (image / "image.meta.yaml").write_text((image / "image.meta.yaml").read_text() + "local:\n" + local)
    problems = load_curriculum(root).problems
    matching = [p for p in problems if p.field == field and reason in p.message]
    assert matching, [str(p) for p in problems]
    assert matching[0].file == "images/linux/image.meta.yaml"
    assert matching[0].line >= 6


def test_image_files_inside_the_image_directory_or_operator_directories_are_fine(
    root: Path, tmp_path: Path, outside: Path
) -> None:
    from syringe.curriculum.policy import CurriculumPolicy
    from syringe.settings import LocalSettings, Settings

    disks = tmp_path / "disks"
    disks.mkdir()
    (disks / "router.qcow2").write_bytes(b"QFI\xfb")
    (disks / "escape.qcow2").symlink_to(outside / "secret")
    image = root / "images/linux/image.meta.yaml"
    base = image.read_text()
    image.write_text(base + "local:\n  kind: kernel\n  kernel: boot/vmlinuz\n  initrd: boot/initrd.img\n")
    (root / "images/linux/boot").mkdir()
    (root / "images/linux/boot/vmlinuz").write_bytes(b"kernel")
    assert load_curriculum(root).problems == []

    image.write_text(base + f"local:\n  kind: disk\n  disk: {disks}/router.qcow2\n")
    assert [p.field for p in load_curriculum(root).problems] == ["local.disk"]
    policy = Settings(local=LocalSettings(image_dirs=[disks])).curriculum_policy()
    assert policy == CurriculumPolicy(image_dirs=(disks,))
    assert load_curriculum(root, policy).problems == []
    image.write_text(base + f"local:\n  kind: disk\n  disk: {disks}/escape.qcow2\n")
    assert [p.field for p in load_curriculum(root, policy).problems] == ["local.disk"]


# ------------------------------------------------------------------------------- 2. sizes and shapes


def test_a_tree_1200_directories_deep_is_a_problem_not_a_crash(
    root: Path, deep_tree: Callable[[Path, int], None], capsys: pytest.CaptureFixture[str]
) -> None:
    deep_tree(root / "lessons/deep", 1200)
    assert main(["validate", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"lessons/deep/{'d/' * 15}d:0:0: directories nest more than 16 levels deep" in out
    assert "1 problem in" in out


def test_a_deep_tree_inside_a_lesson_is_a_problem_and_reading_stops_at_the_cap(
    root: Path, deep_tree: Callable[[Path, int], None]
) -> None:
    source = load_curriculum(root).lessons["triangle"]
    deep_tree(root / "lessons/triangle/stage0/extra", 1200)
    _only(problems_of(root), "lessons/triangle/stage0/extra/d/d", "nest more than 16 levels deep")
    files = read_lesson_files(source)
    assert "stage0/guide.md" in files
    assert not [name for name in files if name.endswith("leaf.txt")]


def test_a_huge_sparse_file_is_a_problem_and_is_never_read(root: Path) -> None:
    source = load_curriculum(root).lessons["triangle"]
    huge = root / "lessons/triangle/stage0/disk.img"
    with huge.open("wb") as sparse:
        sparse.truncate(8 * GIB)
    _only(problems_of(root), "lessons/triangle/stage0/disk.img", f"is {8 * GIB} bytes, over the limit of 1048576")
    files = read_lesson_files(source)
    assert "stage0/disk.img" not in files
    assert "stage0/guide.md" in files


def test_too_many_bytes_in_one_lesson_is_a_problem_and_reading_stops_at_the_cap(root: Path) -> None:
    source = load_curriculum(root).lessons["basics"]
    stage = root / "lessons/basics/stage0"
    for index in range(9):  # each under the per-file cap, together over the lesson's 8 MiB
        with (stage / f"part{index}.bin").open("wb") as sparse:
            sparse.truncate(1_000_000)
    _only(problems_of(root), "lessons/basics:0:0", "add up to more than 8388608 bytes")
    files = read_lesson_files(source)
    assert "stage0/guide.md" in files
    assert sum(len(content) for content in files.values()) <= 8 * 1024 * 1024


def test_too_many_files_in_one_lesson_is_a_problem(root: Path) -> None:
    many = root / "lessons/basics/stage0/many"
    many.mkdir()
    for index in range(1000):
        (many / f"{index}.txt").write_text("")
    problems = problems_of(root)
    _only(problems, "lessons/basics:0:0", "more than 1000 files and directories")
    assert not [p for p in problems if "missing" in p], "a cut walk does not make files missing"


def test_an_oversized_metafile_is_a_problem(root: Path) -> None:
    metafile = root / "lessons/basics/lesson.meta.yaml"
    metafile.write_text(metafile.read_text() + "#" + "x" * (2 * 1024 * 1024) + "\n")
    _only(problems_of(root), "lessons/basics/lesson.meta.yaml:1:1", "over the limit of 1048576 bytes per metafile")


def test_limits_come_from_the_settings(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SYRINGE_CURRICULUM_LIMITS__FILE_BYTES", "12")
    assert main(["validate", str(root)]) == 1
    out = capsys.readouterr().out
    assert "lessons/triangle/stage1/guide.ipynb:0:0: is 13 bytes, over the limit of 12 bytes per file" in out


def test_render_never_embeds_a_file_linked_outside(
    root: Path, outside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = root / "lessons/triangle/stage0/configs/r1.py"
    config.unlink()
    config.symlink_to(outside / "secret")
    with pytest.raises(SystemExit) as refused:
        main(["render", "triangle", "--curriculum", str(root)])
    assert refused.value.code == 1
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err
    assert "lessons/triangle/stage0/configs/r1.py:0:0: is a symbolic link" in captured.err


# ------------------------------------------------------------------------------------ 3. URLs from lessons

URL_FIELDS = [
    ("category: fundamentals\n", "category: fundamentals\ndiagram: {url}\n", "diagram"),
    ("category: fundamentals\n", "category: fundamentals\nvideo: {url}\n", "video"),
    ("- description: only\n", "- description: only\n  stageVideo: {url}\n", "stages[0].stageVideo"),
    ("category: fundamentals\n", "category: fundamentals\nauthors:\n- name: a\n  link: {url}\n", "authors[0].link"),
]
# As YAML scalars: the tab and the leading space are what browsers strip before they read the scheme.
HOSTILE_URLS = ['"javascript:alert(1)"', '"JavaScript:alert(1)"', '"data:text/html,<script>x</script>"',
                '"vbscript:x"', '"java\\tscript:alert(1)"', '" javascript:alert(1)"']  # fmt: skip


@pytest.mark.parametrize(("old", "new", "field"), URL_FIELDS)
@pytest.mark.parametrize("url", HOSTILE_URLS)
def test_lesson_urls_are_http_or_relative(root: Path, old: str, new: str, field: str, url: str) -> None:
    edit_lesson(root, "basics", old, new.format(url=url))
    problems = load_curriculum(root).problems
    assert [(p.file, p.field) for p in problems] == [("lessons/basics/lesson.meta.yaml", field)]
    assert problems[0].line > 1
    assert "links are not allowed" in problems[0].message or "control characters" in problems[0].message


@pytest.mark.parametrize("url", ["https://nrelabs.io/x.png", "http://example.net", "diagram.png", "/static/v.mp4"])
def test_http_and_relative_urls_are_fine(root: Path, url: str) -> None:
    for old, new, _ in URL_FIELDS:
        edit_lesson(root, "basics", old, new.format(url=url))
    assert load_curriculum(root).problems == []


# ------------------------------------------------------------- 4. privilege comes from the operator


def test_a_trusted_vm_listed_by_no_operator_is_a_problem_only_when_the_operator_has_a_list(
    root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(root)]) == 0  # no list: no policy configured, nothing new to report
    capsys.readouterr()
    monkeypatch.setenv("SYRINGE_PLAN__PRIVILEGED_IMAGES", "[]")
    assert main(["validate", str(root)]) == 1
    out = capsys.readouterr().out
    asks = "images/router/image.meta.yaml:2:1: flavor: image 'router' is a trusted vm, which asks to run privileged"
    assert asks in out
    monkeypatch.setenv("SYRINGE_PLAN__PRIVILEGED_IMAGES", '["router"]')
    assert main(["validate", str(root)]) == 0
