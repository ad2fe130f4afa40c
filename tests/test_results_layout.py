"""experiments/results/ holds one folder per study, each with a RUN.md; every results path the
README, the changelog, the docs, the package, the tests and the experiment scripts name exists."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "experiments" / "results"
# a results path as text names it: `experiments/results/a/b_{64,128}.md`, `.../oneshot_rank_nb201/*.csv`
MENTION = re.compile(r"experiments/results(?:/[\w.*{},-]+)+")


def _expand(pattern: str) -> list[str]:
    """`a_{x,y}.md` -> [`a_x.md`, `a_y.md`] (shell brace expansion, one level per group)."""
    parts = re.split(r"\{([^{}]*)\}", pattern)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def _mentions() -> list[tuple[str, str]]:
    sources = [REPO / "README.md", REPO / "CHANGELOG.md"]
    for folder in ("robnas", "tests", "experiments", "benchmarks", "docs"):
        sources += [
            p
            for p in (REPO / folder).rglob("*")
            if p.suffix in (".py", ".sh", ".md")
            and RESULTS not in p.parents
            and p != Path(__file__).resolve()
        ]
    found = []
    for path in sources:
        for match in MENTION.finditer(path.read_text()):
            found.append((str(path.relative_to(REPO)), match.group(0).rstrip(".,")))
    return found


def test_one_folder_per_study_each_with_its_run_record() -> None:
    entries = sorted(RESULTS.iterdir())
    assert len(entries) <= 40
    loose = [p.name for p in entries if not p.is_dir()]
    assert not loose, f"results outside a study folder: {loose}"
    missing = [p.name for p in entries if not (p / "RUN.md").is_file()]
    assert not missing, f"study folders without RUN.md: {missing}"


def test_study_folders_are_named_after_a_script_or_command() -> None:
    scripts = {p.stem for p in (REPO / "experiments").glob("*.py")}
    scripts |= {p.stem for p in (REPO / "experiments").glob("*.sh")}
    others = {p.name for p in RESULTS.iterdir()} - scripts
    # the studies made by a robnas command rather than a script
    assert others <= {"modifications_study", "main_job", "ranker_search_300"}, others


def test_every_named_results_path_exists() -> None:
    mentions = _mentions()
    assert len(mentions) > 20  # the README and the scripts do name results
    dangling = [
        (where, text)
        for where, text in mentions
        if "<" not in text
        and not any(list(REPO.glob(p)) or (REPO / p).exists() for p in _expand(text))
        # `--out experiments/results/x/y` names a prefix: y.md / y.csv
        and not any(list(REPO.glob(p + ".*")) for p in _expand(text))
    ]
    assert not dangling, dangling


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("a/b_{64,128}.md", ["a/b_64.md", "a/b_128.md"]),
        ("a/x{,_zc}.md", ["a/x.md", "a/x_zc.md"]),
        ("plain.csv", ["plain.csv"]),
    ],
)
def test_brace_expansion(text: str, want: list[str]) -> None:
    assert _expand(text) == want
