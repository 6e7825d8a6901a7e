"""Validate a generated curriculum of N lessons and print the time (target: 1,000 lessons under 2 s).

Baseline, measured in the same run: reading and parsing the same metafiles with PyYAML's C loader and
nothing else (no positions, no schema, no checks, no file checks). The ratio says what strictness costs.

    .venv/bin/python bench/validate_curriculum.py [--lessons 1000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from syringe.curriculum import load_curriculum

IMAGE = "slug: {slug}\nflavor: trusted\nnetworkInterfaces: [eth1, eth2, eth3, eth4]\nsshUser: u\nsshPassword: p\n"


def lesson_text(index: int, total: int) -> tuple[str, list[str]]:
    endpoints = 1 + index % 5
    names = [f"r{i}" for i in range(endpoints)]
    lines = [
        f"name: Generated lesson {index}",
        f"slug: lesson-{index}",
        "category: " + ("fundamentals", "tools", "workflows")[index % 3],
        "tier: prod",
        f"prereqs: [lesson-{index - 1}]" if index else "prereqs: []",
        "tags: [generated, bench]",
        "description: A generated lesson for the validator benchmark.",
        "shortDescription: Generated",
        "endpoints:",
    ]
    files = []
    for name in names:
        lines += [
            f"- name: {name}",
            f"  image: image-{index % 10}",
            "  configurationType: python",
            "  presentations:",
            "  - name: cli",
            "    port: 22",
            "    type: ssh",
            "  - name: api",
            "    port: 8080",
            "    type: http",
        ]
    lines.append("connections:")
    for i in range(endpoints - 1):
        lines += [f"- a: {names[i]}", f"  b: {names[i + 1]}", f"  subnet: 10.{i}.{index % 250}.0/24"]
    if endpoints < 2:
        lines[-1] = "connections: []"
    lines.append("stages:")
    for stage in range(2):
        lines += [f"- description: Stage {stage}", "  guideType: markdown"]
        files.append(f"stage{stage}/guide.md")
        files += [f"stage{stage}/configs/{name}.py" for name in names]
    return "\n".join(lines) + "\n", files


def generate(root: Path, lessons: int) -> None:
    (root / "curriculum.meta.yaml").write_text("name: bench\n")
    for i in range(10):
        (root / "images" / f"image-{i}").mkdir(parents=True)
        (root / "images" / f"image-{i}" / "image.meta.yaml").write_text(IMAGE.format(slug=f"image-{i}"))
    for index in range(lessons):
        directory = root / "lessons" / f"lesson-{index}"
        text, files = lesson_text(index, lessons)
        directory.mkdir(parents=True)
        (directory / "lesson.meta.yaml").write_text(text)
        for rel in files:
            (directory / rel).parent.mkdir(parents=True, exist_ok=True)
            (directory / rel).write_text("# generated\n")


def baseline(root: Path) -> None:
    for path in sorted(root.glob("**/*.meta.yaml")):
        yaml.load(path.read_text(), Loader=yaml.CSafeLoader)


def timed(function: object, root: Path, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function(root)  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lessons", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        generate(root, args.lessons)
        tree = load_curriculum(root)
        assert not tree.problems, tree.problems[:5]
        assert len(tree.lessons) == args.lessons
        ours = timed(load_curriculum, root, args.repeat)
        base = timed(baseline, root, args.repeat)
    median, best, base_median = statistics.median(ours), min(ours), statistics.median(base)
    print(f"lessons: {args.lessons} ({sum(1 + i % 5 for i in range(args.lessons))} endpoints), repeat {args.repeat}")
    verdict = "met" if median < 2 else "MISSED"
    print(f"syringe validate: median {median:.3f} s, best {best:.3f} s (target < 2 s: {verdict})")
    print(f"baseline (yaml.CSafeLoader only): median {base_median:.3f} s")
    print(f"ratio validate / baseline: {median / base_median:.2f}x")


if __name__ == "__main__":
    main()
