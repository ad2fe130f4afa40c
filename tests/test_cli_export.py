"""`robnas export` (cli/export.py): an ARCH with --checkpoint, and one-line exit-2 errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from export_helpers import DARTS, NB201, checkpoint, images, one_thread, tiny_spec, trained  # noqa: F401

from robnas.cli import main
from robnas.export.record import load

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cli_export_checkpoint_uses_its_macro_and_mismatch_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tiny_spec("nb201")
    model = trained(spec)
    ckpt = tmp_path / "a.pt"
    torch.save(checkpoint(spec, model), ckpt)
    out = tmp_path / "out"
    code = main(["export", NB201, "--checkpoint", str(ckpt), "--format", "pt", "--out", str(out)])
    assert code == 0
    (path,) = out.iterdir()
    x = images(3, seed=1)
    with torch.no_grad():
        assert torch.equal(load(path)(x), model(x))
    bad = tmp_path / "bad"
    code = main(["export", DARTS, "--checkpoint", str(ckpt), "--format", "pt", "--out", str(bad)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "checkpoint" in err
    assert not bad.exists()
    code = main(["export", NB201, "--format", "onnx", "--out", str(bad)])
    assert code == 2 and "--checkpoint" in capsys.readouterr().err
    assert not bad.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "json,gif"], "unknown export format 'gif'"),
        (["--top", "2"], "--top needs a study run directory"),
    ],
)
def test_cli_export_bad_options_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    out = tmp_path / "out"
    assert main(["export", NB201, "--out", str(out), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()
