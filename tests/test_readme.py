from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command_verbatim():
    readme = (REPO / "README.md").read_text().splitlines()
    commands = [
        line.strip()
        for line in readme
        if "pytest" in line and line.strip().startswith("pip install")
    ]
    assert len(commands) == 1, commands
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert commands[0] in ci


def test_every_subpackage_ships_in_the_wheel():
    pyproject = (REPO / "pyproject.toml").read_text()
    for init in (REPO / "robnas").rglob("__init__.py"):
        package = ".".join(init.parent.relative_to(REPO).parts)
        assert f'"{package}"' in pyproject, f"{package} missing from [tool.setuptools] packages"
