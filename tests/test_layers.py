"""The package layering of robnas: no import cycles, imports point down, `robnas --help` loads no torch.

The import graph is read from the source with `ast` (nothing is imported): every `import` and
`from ... import` of a robnas module, at module level or inside a function, except those under
`if TYPE_CHECKING:` (they never run). Data flows one way:

    space -> genotype -> network -> trainer -> evaluator -> strategy <-> study -> analysis / export

so a package may import only packages of a lower rank in LAYERS; packages of one rank are
siblings and do not import each other. A new package must be given its rank here.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

import robnas

PACKAGE = Path(robnas.__file__).parent

# Modules every layer may use: values (specs: the parsed command-line values), names, errors,
# atomic files, presets.
BASE = {"robnas", "errors", "registry", "io", "genotype", "ops", "config", "result", "specs"}

LAYERS = {
    "base": 0,
    "space": 1,  # search spaces as data: the protocol, TOML, canonical forms
    "attacks": 1,  # attacks, suite, checks: torch and the base only
    "objectives": 1,  # declared rankers and protocol objectives: formulas of measured values
    "data": 2,  # datasets, files, the tabular benchmark (reads spaces)
    "models": 3,  # networks, supernet, samplers, baselines, resolve; building and sizing genotypes
    "checkpoint": 4,
    "device": 4,  # device policy: knows which supernet parts torch.compile may see
    "training": 5,
    "indicators": 5,
    "evaluators": 6,
    "evaluation": 6,  # `robnas evaluate`: the attack suite on a trained checkpoint
    "strategies": 6,
    "search": 7,
    "estimate": 7,  # a supernet search's time estimate from its settings and training progress
    "ranking": 7,
    "studies": 7,  # studies: train + attack grids of named networks (`robnas study`)
    "analysis": 8,
    "export": 8,
    "cli": 9,
    "__main__": 10,
}

# Deliberate upward imports, each inside a function: (importing module, imported package).
# None: spaces are data (robnas.space), networks and their sizes are built in robnas.models.
FACADES: dict[tuple[str, str], str] = {}

# Rules still broken by work in progress elsewhere (strict: the mark must go once they pass).
PENDING: dict[str, str] = {}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(name: str, path: Path, node: ast.AST) -> set[str]:
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names}
    assert isinstance(node, ast.ImportFrom)
    if node.level:  # relative: resolve against this module's package
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        package = package[: len(package) - (node.level - 1)]
        base = ".".join([*package, *([node.module] if node.module else [])])
    else:
        base = node.module or ""
    # `from robnas.export import run` imports the module robnas.export.run
    return {base} | {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules()}


@cache
def imports(name: str, top_level_only: bool) -> frozenset[str]:
    """The robnas modules `name` imports (at module level only, or anywhere at runtime)."""
    path = modules()[name]
    found: set[str] = set()

    def walk(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for stmt in child.orelse:
                    walk(ast.Module(body=[stmt], type_ignores=[]))
                continue
            if top_level_only and isinstance(
                child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
            ):
                continue
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.update(_imported(name, path, child))
            walk(child)

    walk(ast.parse(path.read_text(), str(path)))
    return frozenset(m for m in found if m in modules() and m != name)


def package_of(module: str) -> str:
    part = module.split(".")[1] if "." in module else "robnas"
    return "base" if part in BASE else part


def find_cycle(top_level_only: bool) -> list[str] | None:
    """One import cycle among robnas modules (as a path a -> ... -> a), or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for dep in sorted(imports(module, top_level_only)):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (cycle := visit(dep)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(modules()):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def violations(package: str) -> list[str]:
    """Imports from `package` that do not point to a lower layer (facades excepted)."""
    rank = LAYERS[package]
    bad = []
    for module in modules():
        if package_of(module) != package:
            continue
        for dep in sorted(imports(module, top_level_only=False)):
            target = package_of(dep)
            if target == package or (module, target) in FACADES:
                continue
            if LAYERS[target] >= rank:
                bad.append(f"{module} -> {dep} (rank {LAYERS[target]} >= {rank})")
    return bad


def test_every_package_has_a_layer() -> None:
    unknown = sorted({package_of(m) for m in modules()} - set(LAYERS))
    assert not unknown, f"give these packages a rank in LAYERS: {unknown}"


def test_graph_reader_sees_lazy_and_relative_imports() -> None:
    # The reader must not go blind: the CLI imports its commands' libraries inside functions.
    assert "robnas.analysis.report" in imports("robnas.cli.analyze", top_level_only=False)
    assert "robnas.analysis.report" not in imports("robnas.cli.analyze", top_level_only=True)
    assert "robnas.export.formats" in imports("robnas.export.run", top_level_only=True)


def test_no_import_cycle_at_import_time() -> None:
    assert find_cycle(top_level_only=True) is None


def test_no_import_cycle_including_lazy_imports() -> None:
    # A function-level import that closes a loop is still a loop (analysis core <-> report was one).
    assert find_cycle(top_level_only=False) is None


@pytest.mark.parametrize(
    "package",
    [
        pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=PENDING[p]))
        if p in PENDING
        else p
        for p in sorted(LAYERS)
    ],
)
def test_imports_point_down(package: str) -> None:
    assert violations(package) == []


def test_analysis_and_export_are_used_only_by_the_cli() -> None:
    users = {
        f"{m} -> {d}"
        for m in modules()
        for d in imports(m, False)
        if package_of(d) in ("analysis", "export")
        and package_of(m) not in ("analysis", "export", "cli")
    }
    assert users == set()


def test_genotype_and_space_load_no_torch_stack_at_import() -> None:
    heavy = {"models", "data", "training", "attacks", "indicators", "evaluators", "checkpoint"}
    for module in modules():
        if package_of(module) == "space" or module == "robnas.genotype":
            assert not {package_of(d) for d in imports(module, True)} & heavy, module


# -- imports at module top ----------------------------------------------------------------------

#: Function-level imports allowed outside robnas/cli (the torch-free CLI boundary imports its
#: commands' libraries lazily). Elsewhere a module's imports stand at its top, where they show
#: its dependencies; the few left inside functions load heavy optional libraries on use.
MAX_FUNCTION_IMPORTS = 30


def function_imports(path: Path, root: Path = PACKAGE.parent) -> list[str]:
    """`file:line module` of every import inside a function (not under `if TYPE_CHECKING:`)."""
    found: list[str] = []

    def walk(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                continue
            if in_function and isinstance(child, ast.Import | ast.ImportFrom):
                name = child.module if isinstance(child, ast.ImportFrom) else child.names[0].name
                found.append(f"{path.relative_to(root)}:{child.lineno} {name}")
            inner = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            walk(child, in_function or inner)

    walk(ast.parse(path.read_text(), str(path)), False)
    return found


def test_function_imports_sees_nested_ones_and_skips_type_checking(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        "from typing import TYPE_CHECKING\n"
        "import os\n"
        "if TYPE_CHECKING:\n    import json\n"
        "def f():\n    import re\n    def g():\n        from math import pi\n"
        "class C:\n    def m(self):\n        if True:\n            import sys\n"
    )
    assert function_imports(probe, tmp_path) == [
        "probe.py:6 re",
        "probe.py:8 math",
        "probe.py:12 sys",
    ]


def test_imports_stand_at_module_top() -> None:
    found = [
        line
        for module, path in modules().items()
        if package_of(module) != "cli"
        for line in function_imports(path)
    ]
    assert len(found) <= MAX_FUNCTION_IMPORTS, "\n".join(
        [f"{len(found)} imports inside functions (at most {MAX_FUNCTION_IMPORTS}):", *found]
    )


# -- what `import robnas` and `robnas --help` load ---------------------------------------------


def _imported_modules(args: list[str]) -> set[str]:
    """Top-level names of every module a fresh interpreter imports to run `args`."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", *args], capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    names = set()
    for line in run.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "robnas" in names  # the report was read
    return names


@pytest.mark.parametrize(
    "args",
    [
        ["-c", "import robnas, robnas.errors"],
        ["-m", "robnas", "--help"],
        ["-m", "robnas", "export", "--help"],
        ["-m", "robnas", "analyze", "--help"],
    ],
    ids=["import", "help", "export-help", "analyze-help"],
)
def test_import_and_help_load_no_torch(args: list[str]) -> None:
    loaded = _imported_modules(args)
    assert not loaded & {
        "torch",
        "torchvision",
        "matplotlib",
        "pandas",
        "scipy",
        "optuna",
        "sklearn",
    }


def test_lazy_public_names_resolve() -> None:
    from robnas.export.record import load

    assert robnas.load is load
    for name in robnas._LAZY:
        assert getattr(robnas, name) is not None, name
