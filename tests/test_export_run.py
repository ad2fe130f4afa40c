"""Exporting a study run's top-k (export/run.py): trained, then supernet-inherited weights, final size."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from export_helpers import NB201, checkpoint, images, one_thread, trained  # noqa: F401
from torch import nn

import robnas
from robnas import models
from robnas.cli import main
from robnas.config import TrainConfig
from robnas.errors import ConfigError
from robnas.export.record import load
from robnas.export.run import export_run
from robnas.models.resolve import resolve_arch
from robnas.search.rundir import RunDir, entry, make_summary
from robnas.search.settings import SupernetSettings

pytestmark = pytest.mark.usefixtures("one_thread")


class _SupernetLike(nn.Module):
    """The Supernet's layout: the all-ops network under `net.` (see robnas/models/supernet.py)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net


def _make_run(root: Path, final_macro: dict, supernet_macro: dict) -> dict[str, Any]:
    """A study run directory written through RunDir: settings, summary, final/ and supernet.pt.

    The final size (final_macro) differs from the supernet's (search_macro), so a test sees
    which one an export used."""
    space = robnas.get_space("nb201")
    genotypes = [
        space.parse(NB201),
        space.parse(
            "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
        ),
        space.parse("|skip_connect~0|+|none~0|nor_conv_3x3~1|+|nor_conv_3x3~0|none~1|none~2|"),
    ]
    settings = SupernetSettings(
        space="nb201",
        strategy="regularized_evolution",
        objective="pgd20_acc",
        direction="maximize",
        trials=3,
        preset="tiny",
        search_macro=supernet_macro,
        final_macro=final_macro,
        train=TrainConfig(epochs=1),
    )
    top_k = [
        entry(
            genotype=g.to_str(),
            metrics={"pgd20_acc": 0.4 - 0.1 * i, "clean_acc": 0.7},
            num_params=1,
            flops=1,
            trial=i,
        )
        for i, g in enumerate(genotypes)
    ]
    run_dir = RunDir(root)
    run_dir.init(settings)
    summary = make_summary(settings, trials=3, failed=0, best=top_k[0], top_k=top_k)
    run_dir.write_summary(summary, topk=False)
    # The best one has been trained at the final size.
    final_spec = resolve_arch(genotypes[0], space="nb201", **final_macro)
    final_model = trained(final_spec, seed=2)
    (root / "final").mkdir()
    torch.save(checkpoint(final_spec, final_model), root / "final" / f"{genotypes[0].key}.pt")
    torch.manual_seed(3)
    supernet = _SupernetLike(
        models.build_supernet(space, space.resolve_macro(**supernet_macro))
    ).eval()
    torch.save(
        {"format": "robnas-checkpoint", "version": 1, "model": supernet.state_dict(),
         "arch": "supernet", "space": "nb201", "macro": space.resolve_macro(**supernet_macro),
         "dataset": "cifar10", "sampler": {"seed": 0}},
        root / "supernet.pt",
    )  # fmt: skip
    return {"genotypes": genotypes, "final": final_model, "supernet": supernet.net}


def test_run_export_top_k_uses_final_then_supernet_weights(tmp_path: Path) -> None:
    run = _make_run(tmp_path / "run", {"C": 4, "N": 1}, {"C": 6, "N": 1})
    results = export_run(tmp_path / "run", top=2, formats="json,pt,onnx")
    assert [r.rank for r in results] == [1, 2]
    assert [r.weights for r in results] == ["trained", "supernet"]
    out = tmp_path / "run" / "export"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for r in results for p in r.files)
    assert len(results[0].files) == 3 and len(results[1].files) == 3
    x = images(4, seed=5)
    best = {p.suffix: p for p in results[0].files}
    with torch.no_grad():
        assert torch.equal(load(best[".pt"])(x), run["final"](x))
        second = load({p.suffix: p for p in results[1].files}[".pt"])
        # inherited: the same function as the supernet running that path
        assert torch.equal(second(x), run["supernet"](x, run["genotypes"][1]))
    record = json.loads(best[".json"].read_text())
    assert record["genotype"] == run["genotypes"][0].to_str()
    assert record["metrics"]["pgd20_acc"] == pytest.approx(0.4)
    assert record["macro"]["C"] == 4 and record["weights"] == "trained"
    second_record = json.loads({p.suffix: p for p in results[1].files}[".json"].read_text())
    assert second_record["macro"]["C"] == 6 and second_record["weights"] == "supernet"
    assert "supernet" in results[1].note


def test_run_export_pt2_of_a_supernet_path_is_that_path(tmp_path: Path) -> None:
    """The second entry has only supernet weights: its pt2 computes what the supernet computes
    on that path, loaded by torch alone."""
    run = _make_run(tmp_path / "run", {"C": 4, "N": 1}, {"C": 6, "N": 1})
    results = export_run(tmp_path / "run", top=2, formats="pt2")
    assert [r.weights for r in results] == ["trained", "supernet"]
    x = images(3, seed=6)
    (best,), (second,) = results[0].files, results[1].files
    with torch.no_grad():
        assert torch.equal(torch.export.load(str(best)).module()(x), run["final"](x))
        path = torch.export.load(str(second)).module()
        torch.testing.assert_close(
            path(x), run["supernet"](x, run["genotypes"][1]), atol=1e-5, rtol=0
        )


def test_run_export_without_weights_writes_json_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _make_run(tmp_path / "run", {"C": 4, "N": 1}, {"C": 6, "N": 1})
    (tmp_path / "run" / "supernet.pt").unlink()
    out = tmp_path / "out"
    code = main(["export", str(tmp_path / "run"), "--top", "3", "--format", "json,pt",
                 "--out", str(out)])  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "no weights" in printed and "JSON only" in printed
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 4  # top 1: json + pt (trained); top 2 and 3: json only
    assert sum(n.endswith(".json") for n in names) == 3
    # JSON-only entries still describe the architecture at the run's final macro
    record = json.loads((out / [n for n in names if n.startswith("top3")][0]).read_text())
    assert record["macro"]["C"] == 4 and record["weights"] is None


def test_run_export_bad_entry_writes_nothing(tmp_path: Path) -> None:
    _make_run(tmp_path / "run", {"C": 4, "N": 1}, {"C": 6, "N": 1})
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    summary["top_k"][1]["genotype"] = "nb201:|conv_9x9~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    (tmp_path / "run" / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(ConfigError, match="top_k\\[1\\]"):
        export_run(tmp_path / "run", top=2, formats="json")
    assert not (tmp_path / "run" / "export").exists()
    with pytest.raises(ConfigError, match="top_k"):
        (tmp_path / "run" / "summary.json").write_text(json.dumps({"best": None}))
        export_run(tmp_path / "run", top=1)
    (tmp_path / "run" / "config.json").unlink()
    with pytest.raises(ConfigError, match="no config.json"):
        export_run(tmp_path / "run", top=1)
    assert not (tmp_path / "run" / "export").exists()
