"""experiments/supernet_learning_speed.py at a toy size: three runs on the same images, the
fixed path validated on its own cell, and a rerun that trains nothing again."""

from __future__ import annotations

import pandas as pd
import pytest
from experiment_helpers import load_experiment


def _script(monkeypatch):
    return load_experiment("supernet_learning_speed", monkeypatch)


def test_toy_runs_write_three_rows_and_resume(data_root, tmp_path, monkeypatch):
    script = _script(monkeypatch)
    argv = [
        "--data", str(data_root), "--limit", "300", "--val", "40", "--images", "128",
        "--method", "clean", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "res"),
    ]  # fmt: skip
    assert script.main(argv) == 0
    table = pd.read_csv(tmp_path / "res.csv")
    assert table["run"].tolist() == ["standalone", "fixed_path", "sampled"]
    assert (table["images"] == 128).all()
    assert table["clean_acc"].between(0, 1).all() and table["robust_acc"].between(0, 1).all()
    assert (
        "Command: `python experiments/supernet_learning_speed.py"
        in (tmp_path / "res.md").read_text()
    )

    calls = []
    monkeypatch.setattr(script, "train", lambda *a, **k: calls.append(1))
    assert script.main(argv) == 0
    assert not calls  # every run was done: nothing trains again
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "res.csv"), table)


def test_unknown_run_is_refused(tmp_path, monkeypatch):
    script = _script(monkeypatch)
    with pytest.raises(SystemExit):
        script.main(["--runs", "nope", "--work", str(tmp_path), "--out", str(tmp_path / "r")])


def test_batch_and_peak_lr_reach_the_training_config(data_root, tmp_path, monkeypatch):
    script = _script(monkeypatch)
    seen = []

    def spy(model, train_data, val_data, cfg, *args, **kwargs):
        seen.append(cfg)
        raise SystemExit(0)  # the config is all this test needs

    monkeypatch.setattr(script, "train", spy)
    argv = [
        "--data", str(data_root), "--limit", "300", "--val", "40", "--images", "128",
        "--runs", "sampled", "--batch-size", "32", "--peak-lr", "0.05",
        "--work", str(tmp_path / "work"), "--out", str(tmp_path / "res"),
    ]  # fmt: skip
    with pytest.raises(SystemExit):
        script.main(argv)
    (cfg,) = seen
    assert (cfg.batch_size, cfg.peak_lr) == (32, pytest.approx(0.05))
    assert cfg.method == "fgsm-rs"  # the rest stays the preset's


def test_augment_and_train_seed_reach_the_training(data_root, tmp_path, monkeypatch):
    """`--augment flip` trains on flipped, never cropped, batches and restores the library's
    augmentation after; `--train-seed` changes the training seed, not the split."""
    import torch

    from robnas.data import datasets

    script = _script(monkeypatch)
    real = datasets.augment_batch
    seen = []

    def spy(model, train_data, val_data, cfg, *args, **kwargs):
        x = torch.arange(2 * 4, dtype=torch.uint8).view(1, 1, 2, 4).repeat(64, 1, 1, 1)
        out = datasets.augment_batch(x, torch.Generator().manual_seed(0))
        seen.append((cfg, out, val_data.labels.clone()))
        raise SystemExit(0)

    monkeypatch.setattr(script, "train", spy)
    argv = [
        "--data", str(data_root), "--limit", "300", "--val", "40", "--images", "128",
        "--runs", "sampled", "--work", str(tmp_path / "work"), "--out", str(tmp_path / "res"),
    ]  # fmt: skip
    with pytest.raises(SystemExit):
        script.main([*argv, "--augment", "flip", "--train-seed", "3"])
    assert datasets.augment_batch is real
    with pytest.raises(SystemExit):
        script.main(argv)
    (flip_cfg, flipped, flip_val), (preset_cfg, _, preset_val) = seen
    assert flip_cfg.augment and flip_cfg.seed == 3 and preset_cfg.seed == 0
    assert not preset_cfg.augment  # the preset's: no augmentation
    assert torch.equal(flip_val, preset_val)  # the same held-out split
    x = torch.arange(2 * 4, dtype=torch.uint8).view(1, 2, 4)
    rows_flipped = (flipped[:, 0] == x.flip(2)).all(dim=(1, 2))
    rows_kept = (flipped[:, 0] == x).all(dim=(1, 2))
    assert (rows_flipped | rows_kept).all() and rows_flipped.any() and rows_kept.any()
