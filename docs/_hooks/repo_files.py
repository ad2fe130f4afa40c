"""mkdocs hook: the site shows files that live outside docs/ without copying them there.

- Every PNG under experiments/results/ and benchmarks/results/ (the figures the experiment
  scripts and experiments/plot_docs.py commit beside their tables) is served as
  assets/results/<study>/<name>.png and assets/benchmarks/<bench>/<name>.png.
- Pages link those figures by their repository path, relative to the page
  (`../../experiments/results/main_job_curve/curve.png` from docs/results/), so the links work
  when the markdown is read in the repository too; this hook rewrites them to the served copy.
- CHANGELOG.md becomes the page changelog.md.

`mkdocs build --strict` then checks every link as usual.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
FOLDERS = {
    "assets/results": REPO / "experiments" / "results",
    "assets/benchmarks": REPO / "benchmarks" / "results",
}
# a markdown link or image target: ](target) or ](target "title")
LINK = re.compile(r"\]\(([^)\s]+)(\s+\"[^\"]*\")?\)")


def served(path: Path) -> str | None:
    """The site path a repository file is served at, or None."""
    for prefix, folder in FOLDERS.items():
        if path.suffix == ".png" and folder in path.parents:
            return f"{prefix}/{path.relative_to(folder).as_posix()}"
    return None


def rewrite_links(markdown: str, page_dir: Path) -> str:
    """Links and images of a page in `page_dir` that name a served repository file, relative to
    the page, pointed at the served copy instead."""

    def rewrite(match: re.Match[str]) -> str:
        target = match.group(1)
        if "://" in target or target.startswith(("#", "/")):
            return match.group(0)
        uri = served((page_dir / target).resolve())
        if uri is None:
            return match.group(0)
        relative = os.path.relpath(DOCS / uri, page_dir).replace(os.sep, "/")
        return f"]({relative}{match.group(2) or ''})"

    return LINK.sub(rewrite, markdown)


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for folder in FOLDERS.values():
        for png in sorted(folder.rglob("*.png")):
            uri = served(png)
            assert uri is not None
            files.append(File.generated(config, uri, abs_src_path=str(png)))
    changelog = REPO / "CHANGELOG.md"
    files.append(File.generated(config, "changelog.md", abs_src_path=str(changelog)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    return rewrite_links(markdown, (DOCS / page.file.src_uri).parent)
