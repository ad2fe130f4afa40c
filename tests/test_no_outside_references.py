"""What a user reads points nowhere outside the repository: no folder beside it, no notes kept
elsewhere, no issue or session numbers. Checked in the README, the package sources (help, errors,
comments, docstrings), the docs and their site configuration, the changelog, the experiment
scripts, the benchmarks and every command's --help."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from robnas.cli import build_parser

REPO = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(
    r"\.\./shared|/work/|shared/data|\"shared\"\s*/\s*\"data\"|MEASUREMENTS\.md|GUIDE\.md|DEVELOPERS\.md"
    r"|\bissues? #?\d|\bsessions? \d",
    re.IGNORECASE,
)


def _sources() -> Iterator[Path]:
    yield REPO / "README.md"
    yield REPO / "mkdocs.yml"
    yield from sorted((REPO / "robnas").rglob("*.py"))
    yield from sorted((REPO / "search_spaces").glob("*.toml"))
    yield from sorted((REPO / "docs").rglob("*.md"))
    yield from sorted((REPO / "docs").rglob("*.py"))
    yield REPO / "CHANGELOG.md"
    for folder in ("experiments", "benchmarks"):
        for suffix in ("*.py", "*.sh"):
            yield from sorted((REPO / folder).glob(suffix))


def _helps(parser: argparse.ArgumentParser, name: str = "robnas") -> Iterator[tuple[str, str]]:
    yield name, parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, subparser in action.choices.items():
                yield from _helps(subparser, f"{name} {sub}")


def test_sources_point_nowhere_outside() -> None:
    found = [
        f"{path.relative_to(REPO)}:{number}: {line.strip()}"
        for path in _sources()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, "\n".join(found)


def test_every_help_points_nowhere_outside() -> None:
    helps = dict(_helps(build_parser()))
    assert len(helps) > 10  # every command and sub-command was reached
    found = [name for name, text in helps.items() if OUTSIDE.search(text)]
    assert not found, found


@pytest.mark.parametrize(
    "text",
    [
        "see ../shared/MEASUREMENTS.md",
        "default /work/shared/data",
        'root = HERE.parent.parent / "shared" / "data"',
        "as issue 15 asks",
        "(Issue #9.4)",
        "declared in session 9",
    ],
)
def test_the_pattern_catches_each_kind(text: str) -> None:
    assert OUTSIDE.search(text)


@pytest.mark.parametrize(
    "text",
    ["set ROBNAS_DATA or --data-dir", "onnxruntime.InferenceSession", "a shared supernet"],
)
def test_the_pattern_leaves_ordinary_text(text: str) -> None:
    assert not OUTSIDE.search(text)
