"""Packaging: one version everywhere, complete metadata, a changelog, and a wheel that installs
into a fresh virtual environment and runs `robnas --help` there (with no dependency installed:
the help imports no torch)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

import robnas
from robnas.cli import main

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the tomli backport (a dependency there)
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
VERSION = PROJECT["version"]


def test_one_version_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    assert version("robnas") == VERSION, "reinstall: pip install -e '.[dev]'"
    assert robnas.__version__ == VERSION
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"robnas {VERSION}"


def test_metadata_is_complete() -> None:
    assert PROJECT["license"] == "MIT"
    assert all((REPO / f).is_file() for f in PROJECT["license-files"])
    assert "MIT License" in (REPO / "LICENSE").read_text()
    assert (REPO / PROJECT["readme"]).is_file()
    assert PROJECT["authors"] == [{"name": "robnas developers"}]
    assert len(PROJECT["keywords"]) >= 3
    classifiers = PROJECT["classifiers"]
    assert any(c.startswith("Development Status ::") for c in classifiers)
    python = [c.rsplit(" :: ", 1)[1] for c in classifiers if re.search(r"Python :: 3\.\d+$", c)]
    assert python and min(python, key=lambda v: int(v.split(".")[1])) == "3.10"
    assert PROJECT["requires-python"] == ">=3.10"
    # no real URL is known: the links name files of this repository, which must exist
    for name in ("Homepage", "Documentation", "Changelog"):
        assert (REPO / PROJECT["urls"][name]).exists(), name
    docs = " ".join(PROJECT["optional-dependencies"]["docs"])
    for package in ("mkdocs>", "mkdocs-material>", "mkdocstrings[python]>"):
        assert package in docs


def test_changelog_keeps_a_changelog() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    releases = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.MULTILINE)
    assert releases[0] == ("Unreleased", "")
    assert releases[1][0] == VERSION and releases[1][1], "the current version, dated"
    kinds = set(re.findall(r"^### (.+)$", text, re.MULTILINE))
    assert kinds <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}, kinds


def _build_wheel(tmp_path: Path) -> Path:
    """The wheel of a clean copy of the sources (nothing is built inside the repository)."""
    import setuptools

    major = int(setuptools.__version__.split(".")[0])
    assert major >= 77, f"setuptools {setuptools.__version__}: pip install -e '.[dev]'"
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("robnas", "search_spaces"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    subprocess.run(
        [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(src)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("robnas-*.whl")
    return wheel


def test_the_wheel_installs_and_runs_help_in_a_fresh_venv(tmp_path: Path) -> None:
    wheel = _build_wheel(tmp_path)
    assert wheel.name == f"robnas-{VERSION}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    for data in ("robnas/py.typed", "robnas/search_spaces/darts.toml"):
        assert data in names
    assert any(n.endswith("robnas/models/robnet_architectures.json") for n in names)
    assert any(n.endswith("dist-info/licenses/LICENSE") for n in names)

    venv = tmp_path / "venv"  # no system site packages: nothing but the wheel is installed
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python"]
    subprocess.run(
        [*install, str(python), "install", "-q", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
    )
    robnas_bin = venv / "bin" / "robnas"
    shown = subprocess.run(
        [str(robnas_bin), "--help"], capture_output=True, text=True, cwd=tmp_path
    )
    assert shown.returncode == 0, shown.stderr
    assert "usage: robnas" in shown.stdout and "export" in shown.stdout
    said = subprocess.run(
        [str(robnas_bin), "--version"], capture_output=True, text=True, cwd=tmp_path
    )
    assert said.stdout.strip() == f"robnas {VERSION}", said.stderr
    # torch is not there: the help above really ran without any dependency
    missing = subprocess.run([str(python), "-c", "import torch"], capture_output=True)
    assert missing.returncode != 0
