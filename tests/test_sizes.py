"""Sizes: `[sizes]` in space files, one resolver for every command that builds a network.

A size is C and layers (or N). A preset names default sizes; `--size` names one explicitly.
Every command resolves them the same way (`robnas.cli._common.size_of` + `resolve_size`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from robnas.cli import main
from robnas.errors import InvalidSpace
from robnas.space.search_space import get_space
from robnas.specs import Size

NB201 = "nb201:|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|"

SPACE = """
name = "mine"
[cell]
inputs = 1
nodes = 3
edge = "choice"
ops = ["none", "skip_connect", "nor_conv_3x3"]
output = "last"
[macro]
family = "nb201"
C = 16
N = 5
"""


def test_space_files_name_their_sizes(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(SPACE + "[sizes.tiny]\nC = 4\nN = 1\n")
    space = get_space(str(path))
    assert space.sizes == {"tiny": {"C": 4, "N": 1}}
    assert space.resolve_size(Size.parse("tiny"))["C"] == 4
    assert space.resolve_size(Size.parse("tiny,C=6")) == {**space.macro, "C": 6, "N": 1}
    assert space.resolve_size(Size.parse("C=8")) == {**space.macro, "C": 8}  # on the default


def test_an_old_presets_table_is_read_as_sizes_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "old.toml"
    path.write_text(SPACE + "[presets.tiny]\nC = 4\nN = 1\n")
    with pytest.warns(FutureWarning, match=r"rename them to \[sizes.NAME\]"):
        space = get_space(str(path))
    assert space.sizes == {"tiny": {"C": 4, "N": 1}}
    both = tmp_path / "both.toml"
    both.write_text(SPACE + "[sizes.tiny]\nC = 4\n[presets.small]\nC = 8\n")
    with pytest.raises(InvalidSpace, match=r"both \[sizes\] and \[presets\] tables; rename"):
        get_space(str(both))


# -- one resolver across commands ------------------------------------------------------------------


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The macro each `train` / `supernet train` would train at (training itself is skipped)."""
    import robnas.cli.train as train_cli

    seen: list[dict[str, Any]] = []

    def record(args: Any, cfg: Any, model: Any, dataset: str, label: str, **kw: Any) -> int:
        seen.append(dict(kw["spec"].macro if "spec" in kw else model.macro))
        return 0

    monkeypatch.setattr(train_cli, "_run", record)
    return seen


def _macros(tmp_path: Path, capsys: pytest.CaptureFixture[str], built: list, flags: list[str]):
    """The macro of the nb201 network `flags` select, as each command resolves it."""
    out = str(tmp_path / "out")
    assert main(["train", NB201, *flags, "--out", out]) == 0
    assert main(["supernet", "train", "--space", "nb201", *flags, "--out", out]) == 0
    capsys.readouterr()
    assert main(["arch", "info", NB201, *flags, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)["macro"]
    assert main(["export", NB201, *flags, "--out", str(tmp_path / "exp")]) == 0
    record = json.loads(next((tmp_path / "exp").glob("*.json")).read_text())
    macros = [built[0], built[1], info, record["macro"]]
    built.clear()
    return macros


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--preset", "tiny"], {"C": 8, "N": 1}),
        (["--size", "tiny"], {"C": 8, "N": 1}),
        (["--preset", "tiny", "--size", "paper"], {"C": 16, "N": 5}),  # --size wins
        (["--preset", "tiny", "--C", "4"], {"C": 4, "N": 1}),  # counts on the preset's size
        (["--size", "C=4,N=2"], {"C": 4, "N": 2}),
        # nb201 has no `small`: the preset's default size falls back to the space's default,
        # in every command (train and arch info used to refuse it, supernet train took it)
        (["--preset", "small"], {"C": 16, "N": 5}),
    ],
)
def test_every_command_builds_the_same_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], built: list, flags: list, expected: dict
) -> None:
    macros = _macros(tmp_path, capsys, built, flags)
    for macro in macros:
        assert {k: macro[k] for k in expected} == expected, macros


@pytest.mark.parametrize(
    "argv",
    [
        ["train", NB201, "--out", "{out}"],
        ["supernet", "train", "--space", "nb201", "--out", "{out}"],
        ["arch", "info", NB201],
        ["export", NB201, "--out", "{out}"],
        ["evaluate", NB201, "--checkpoint", "{ckpt}", "--out", "{out}"],
        ["search", "--space", "nb201", "--out", "{out}"],
        ["search", "--space", "nb201", "--final-size", "small", "--out", "{out}"],
    ],
)
def test_a_size_the_space_lacks_is_refused_by_every_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], built: list, argv: list[str]
) -> None:
    from robnas.checkpoint import save_checkpoint

    out, ckpt = tmp_path / "run", tmp_path / "net.pt"
    save_checkpoint(ckpt, {"model": {}, "arch": NB201, "space": "nb201"})
    argv = [a.replace("{out}", str(out)).replace("{ckpt}", str(ckpt)) for a in argv]
    if "--final-size" not in argv:
        argv += ["--size", "small"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.endswith("unknown size 'small'; known: paper, tiny (the sizes of space nb201)")
    assert not out.exists() and not built


def test_a_baseline_has_one_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["arch", "info", "resnet18", "--size", "C=4"]) == 2
    assert "resnet18 is a network of one size" in capsys.readouterr().err
    assert main(["arch", "info", "resnet18", "--preset", "tiny", "--json"]) == 0  # schedule only
