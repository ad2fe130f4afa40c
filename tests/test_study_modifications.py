"""`robnas study modifications`: the table, success among initially-correct examples, resume,
bad input. Real CIFAR-10 through ROBNAS_DATA; tiny sizes (1 epoch, a few attack steps)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

import robnas.studies.modifications as modifications
from robnas.attacks.base import Attack
from robnas.attacks.ssim import ssim
from robnas.cli import main
from robnas.studies.modifications import (
    METRICS,
    attack_metrics,
    default_grid,
    parse_models,
    slug,
    table_columns,
)

FAST = [
    "--method", "clean", "--epochs", "1", "--train-size", "24", "--val-size", "8", "--steps", "1", "--val-steps", "2",
    "--test-size", "8", "--batch-size", "8", "--attacks", "fgsm,pgd7,cw", "--cw-steps", "1",
]  # fmt: skip


class PixelModel(nn.Module):
    """Two classes: 1 when the top-left pixel of channel 0 exceeds 0.5."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: Tensor) -> Tensor:
        t = (x[:, 0, 0, 0] - 0.5) * self.scale
        return torch.stack([-t, t], dim=1)


class FlipExtremes(Attack):
    """Mirrors the pixel of examples whose pixel is below 0.15 or above 0.85 (flips them)."""

    name = "flip"

    def __init__(self) -> None:
        super().__init__(eps=None, norm="l2")

    def perturb(self, model: nn.Module, images: Tensor, labels: Tensor, generator: Any) -> Tensor:
        adv = images.clone()
        p = images[:, 0, 0, 0]
        extreme = (p < 0.15) | (p > 0.85)
        adv[extreme, 0, 0, 0] = 1 - p[extreme]
        return adv


def test_success_rate_counts_only_initially_correct_examples() -> None:
    pixels = torch.tensor([0.1, 0.2, 0.7, 0.9, 0.05])
    labels = torch.tensor([0, 0, 1, 1, 1])  # the last is misclassified before any attack
    images = torch.full((5, 3, 8, 8), 0.4)
    images[:, 0, 0, 0] = pixels
    metrics = attack_metrics(PixelModel(), images, labels, {"flip": FlipExtremes()}, batch_size=2)
    assert metrics["clean_acc"] == pytest.approx(4 / 5)
    # examples 0 and 3 flip: 2 of the 4 correct ones (not 2/5, and the wrong one is never counted)
    assert metrics["flip_success_rate"] == pytest.approx(2 / 4)
    adv = images.clone()
    adv[[0, 3], 0, 0, 0] = 1 - pixels[[0, 3]]
    expected = 1 - float(ssim(images[[0, 3]], adv[[0, 3]]).mean())
    assert metrics["flip_one_minus_ssim"] == pytest.approx(expected, rel=1e-5)
    assert metrics["flip_seconds_per_image"] > 0


def test_default_grid_and_model_names() -> None:
    grid = default_grid()
    assert len(grid) == 16 and grid[:4] == ["vgg16", "vgg16[bn=off]", "vgg16[residual=on]",
                                            "vgg16[se=on]"]  # fmt: skip
    assert "mobilenet_v3[se=off]" in grid and "mobilenet_v2[se=on]" in grid
    assert parse_models("MobileNet_V3[se=off,bn=on], vgg16[bn=off,se=on],mobilenet_v3") == [
        "mobilenet_v3[se=off]",
        "vgg16[bn=off,se=on]",
        "mobilenet_v3",
    ]
    assert slug("vgg16[bn=off,se=on]") == "vgg16-bn-off-se-on"


def test_command_writes_table_and_resume_skips_finished_models(
    tmp_path: Path, data_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "study"
    base = ["study", "modifications", "--out", str(out), "--data-dir", str(data_root), *FAST]
    assert main([*base, "--models", "mobilenet_v3[se=off]"]) == 0
    with open(out / "modifications.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == table_columns(["fgsm", "pgd7", "cw"])
    assert [r["model"] for r in rows] == ["mobilenet_v3[se=off]"]
    assert rows[0]["se"] == "off" and rows[0]["n_test"] in ("8", "8.0")
    assert all(f"{a}_{m}" in rows[0] for a in ("fgsm", "pgd7", "cw") for m in METRICS)
    assert 0.0 <= float(rows[0]["clean_acc"]) <= 1.0
    md = (out / "modifications.md").read_text()
    assert "classifies correctly before the attack" in md and "`mobilenet_v3[se=off]`" in md
    assert (out / "modifications.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "models" / "mobilenet_v3-se-off" / "last.pt").exists()

    calls: list[str] = []
    real_train = modifications.train

    def counting_train(*args: Any, **kw: Any) -> Any:
        calls.append(str(args[4]))
        return real_train(*args, **kw)

    monkeypatch.setattr(modifications, "train", counting_train)
    models = "mobilenet_v3[se=off],mobilenet_v3"
    assert main([*base, "--models", models]) == 0
    assert calls == [str(out / "models" / "mobilenet_v3")]  # the finished model is skipped
    with open(out / "modifications.csv") as f:
        assert [r["model"] for r in csv.DictReader(f)] == ["mobilenet_v3[se=off]", "mobilenet_v3"]
    assert main([*base, "--models", models]) == 0
    assert len(calls) == 1
    saved = json.loads((out / "study.json").read_text())
    assert saved["models"] == ["mobilenet_v3[se=off]", "mobilenet_v3"]
    # other settings in the same folder are refused (their rows would be mixed in)
    assert main([*base, "--models", models, "--method", "pgd"]) == 2


@pytest.mark.parametrize(
    "extra",
    [
        ["--models", "vgg17"],
        ["--models", "vgg16[bn=maybe]"],
        ["--models", "mobilenet_v3[dropout=on]"],
        ["--models", "mobilenet_v3", "--attacks", "fgsm,nope"],
        ["--models", "mobilenet_v3", "--preset", "huge"],
        ["--models", "mobilenet_v3", "--eps", "8/0"],
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    out = tmp_path / "study"
    assert main(["study", "modifications", "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("robnas study: error:") and "\n" not in err
    assert not out.exists()
