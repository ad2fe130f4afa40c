"""experiments/supernet_learning_speed.py at a toy size: three runs on the same images, the
fixed path validated on its own cell, and a rerun that trains nothing again; the study's one
table folded from its runs' files."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from experiment_helpers import load_experiment

STUDY = Path(__file__).resolve().parents[1] / "experiments" / "results" / "supernet_learning_speed"


def _script(monkeypatch):
    return load_experiment("supernet_learning_speed", monkeypatch)


def test_toy_runs_write_three_rows_and_resume(data_root, tmp_path, monkeypatch):
    script = _script(monkeypatch)
    out = tmp_path / "study" / "runs" / "res"
    argv = [
        "--data", str(data_root), "--limit", "300", "--val", "40", "--images", "128",
        "--method", "clean", "--work", str(tmp_path / "work"), "--out", str(out),
    ]  # fmt: skip
    assert script.main(argv) == 0
    table = pd.read_csv(out.with_suffix(".csv"))
    assert table["run"].tolist() == ["standalone", "fixed_path", "sampled"]
    assert (table["images"] == 128).all()
    assert table["clean_acc"].between(0, 1).all() and table["robust_acc"].between(0, 1).all()
    assert (
        "Command: `python experiments/supernet_learning_speed.py"
        in out.with_suffix(".md").read_text()
    )
    # in a runs/ folder: the study's table is refolded, the run's settings read from its report
    from robnas.config import get_preset

    preset = get_preset("tiny").train
    variants = pd.read_csv(tmp_path / "study" / "variants.csv")
    assert variants["variant"].tolist() == ["res"] * 3
    assert variants["run"].tolist() == table["run"].tolist()
    assert variants["method"].eq("clean").all() and variants["clean_passes"].eq(0).all()
    assert variants["batch_size"].eq(preset.batch_size).all()
    assert variants["peak_lr"].eq(preset.peak_lr).all() and variants["passes"].eq(1).all()
    assert variants["augment"].eq("none").all() and variants["train_seed"].eq(0).all()
    assert variants["clean_acc"].tolist() == pytest.approx(table["clean_acc"].tolist(), abs=1e-4)

    calls = []
    monkeypatch.setattr(script, "train", lambda *a, **k: calls.append(1))
    assert script.main(argv) == 0
    assert not calls  # every run was done: nothing trains again
    pd.testing.assert_frame_equal(pd.read_csv(out.with_suffix(".csv")), table)


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


def test_the_committed_table_is_the_fold_of_the_committed_runs(monkeypatch):
    """variants.csv is rebuilt, not edited: the fold of runs/ gives it exactly, with each run's
    settings as its report records them (and the six corrected ramps)."""
    script = _script(monkeypatch)
    folded = script.fold(STUDY / "runs")
    committed = pd.read_csv(STUDY / "variants.csv")
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(folded.to_csv(index=False))), committed)
    assert len(committed) == len(list((STUDY / "runs").glob("*.csv"))) + 2  # the first has 3 runs
    row = committed.set_index("variant").loc[
        "supernet_learning_speed_b32_dense_lr0.1_noaug_ramp0.3_t1"
    ]
    assert (row["batch_size"], row["peak_lr"], row["augment"]) == (32, 0.1, "none")
    assert (row["eps_ramp"], row["train_seed"], row["clean_acc"]) == (0.3, 1, 0.39)
    assert row["sampler"] == "dense_start" and pd.isna(row["corrected"])
    noaug = committed.set_index("variant").loc["supernet_learning_speed_b32_dense_lr0.1_noaug"]
    assert (noaug["eps_ramp"], noaug["corrected"]) == (0.0, "eps_ramp")
    first = committed[committed["variant"] == "supernet_learning_speed"]
    assert first["run"].tolist() == ["standalone", "fixed_path", "sampled"]
    assert first["batch_size"].eq(128).all() and first["sampler"].isna().all()  # not recorded


def test_settings_read_from_both_report_wordings(monkeypatch):
    script = _script(monkeypatch)
    old = (
        "Recipe: the tiny preset's training (fgsm-rs, first 0.3 of the pass clean, batch 128, "
        "peak LR 0.05), darts at C=8, 5 layers, one pass over the same 49500 training images."
    )
    new = (
        "Recipe: the tiny preset's training (clean, the first 0 pass(es) clean, batch 32, peak LR "
        "0.1), darts at C=8, 5 layers, 2 pass(es) over the same 128 training images; clean and "
        "PGD-10 (8/255) accuracy on 40 held-out images, BatchNorm recalibrated on 256 images per "
        "path; sampled paths: dense_start over the first 0.5 of the steps; augmentation: flip; "
        "eps ramp over 0.25 pass(es) after the clean start; training seed 3. The cell: `x`."
    )
    assert script.recorded_settings(old) == {
        **dict.fromkeys(script.SETTINGS),
        "method": "fgsm-rs", "clean_passes": 0.3, "batch_size": 128, "peak_lr": 0.05, "passes": 1,
    }  # fmt: skip
    assert script.recorded_settings(new) == {
        "method": "clean", "clean_passes": 0.0, "batch_size": 32, "peak_lr": 0.1, "passes": 2,
        "sampler": "dense_start", "dense_start": 0.5, "augment": "flip", "eps_ramp": 0.25,
        "train_seed": 3, "recal_images": 256,
    }  # fmt: skip


def test_fold_of_an_empty_study_is_refused(tmp_path, monkeypatch):
    script = _script(monkeypatch)
    (tmp_path / "runs").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--fold", str(tmp_path)])
    assert exit_info.value.code == 2
    assert not (tmp_path / "variants.csv").exists()
