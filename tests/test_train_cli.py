from __future__ import annotations

import csv

import torch

from robnas.cli import main
from robnas.training.loop import load_checkpoint

ARCH = "nb201:|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|skip_connect~1|nor_conv_3x3~2|"
FAST = [
    "--train-size",
    "96",
    "--val-size",
    "32",
    "--batch-size",
    "32",
    "--steps",
    "1",
    "--val-steps",
    "2",
    "--no-progress",
]


def test_cli_train_tiny_arch_end_to_end_and_resume(tmp_path, data_root, capsys):
    out = tmp_path / "run"
    args = ["train", ARCH, "--preset", "tiny", "--out", str(out), "--data-dir", str(data_root)]
    assert main([*args, *FAST, "--epochs", "1"]) == 0
    assert "best pgd2" in capsys.readouterr().out
    ckpt = load_checkpoint(out / "last.pt", ARCH)
    assert ckpt["macro"]["C"] == 8 and ckpt["macro"]["N"] == 1 and ckpt["epoch"] == 1
    # a second call on the same folder without --resume refuses; with a bad flag it is one line
    assert main([*args, *FAST, "--epochs", "1"]) == 2
    assert "--resume" in capsys.readouterr().err
    # resuming a finished run trains nothing more and reports the same result
    assert main([*args, *FAST, "--epochs", "1", "--resume"]) == 0
    assert load_checkpoint(out / "last.pt")["epoch"] == 1
    # the evaluation side loads what training wrote
    from robnas.evaluation import load_model

    model = load_model(ARCH, out / "best.pt", "cifar10")
    assert isinstance(model, torch.nn.Module)


def test_cli_supernet_train_tiny(tmp_path, data_root, capsys):
    out = tmp_path / "sn"
    args = [
        "supernet",
        "train",
        "--space",
        "nb201",
        "--preset",
        "tiny",
        "--C",
        "4",
        "--out",
        str(out),
    ]
    args += ["--data-dir", str(data_root), "--sampler", "uniform_density", "--epochs", "1", *FAST]
    assert main(args) == 0
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert len(rows) == 1 and 0.0 <= float(rows[0]["robust_acc"]) <= float(rows[0]["clean_acc"])
    ckpt = load_checkpoint(out / "last.pt", "supernet:nb201")
    assert ckpt["sampler"]["name"] == "uniform_density" and ckpt["kind"] == "supernet"


def test_cli_corrupt_checkpoint_on_resume_is_one_line(tmp_path, data_root, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"garbage")
    args = ["train", ARCH, "--preset", "tiny", "--out", str(out), "--data-dir", str(data_root)]
    assert main([*args, *FAST, "--resume"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("robnas train: error:") and "checkpoint" in last and "corrupt" in last


def test_cli_clean_method_for_train_and_supernet_train(tmp_path, data_root, capsys):
    data = ["--data-dir", str(data_root), "--epochs", "1", *FAST]
    net = tmp_path / "net"
    assert (
        main(["train", ARCH, "--preset", "tiny", "--method", "clean", "--out", str(net), *data])
        == 0
    )
    assert load_checkpoint(net / "last.pt")["config"]["method"] == "clean"
    sn = tmp_path / "sn"
    args = ["supernet", "train", "--space", "nb201", "--preset", "tiny", "--C", "4", "--N", "1"]
    assert main([*args, "--method", "clean", "--out", str(sn), *data]) == 0
    ckpt = load_checkpoint(sn / "last.pt", "supernet:nb201")
    assert ckpt["config"]["method"] == "clean" and ckpt["epoch"] == 1
    assert "clean" in capsys.readouterr().err  # the banner names the method


def test_cli_augment_and_eps_ramp_reach_the_training(tmp_path, data_root, capsys, monkeypatch):
    """The tiny preset trains on the images as they are (one pass sees no image twice) with an
    eps ramp; `--augment` crops and flips every training batch, `--eps-ramp-epochs 0` drops the
    ramp; resuming with another setting refuses."""
    from robnas.data import datasets

    crops = []
    real = datasets.augment_batch
    monkeypatch.setattr(datasets, "augment_batch", lambda x, g: crops.append(len(x)) or real(x, g))
    data = ["--data-dir", str(data_root), "--epochs", "1", *FAST]
    plain, augmented = tmp_path / "plain", tmp_path / "augmented"
    base = ["train", ARCH, "--preset", "tiny"]
    assert main([*base, "--out", str(plain), *data]) == 0
    assert crops == [] and load_checkpoint(plain / "last.pt")["config"]["augment"] is False
    assert load_checkpoint(plain / "last.pt")["config"]["eps_ramp_epochs"] == 0.3
    augment = ["--augment", "--eps-ramp-epochs", "0"]
    assert main([*base, *augment, "--out", str(augmented), *data]) == 0
    assert crops == [32, 32, 32]  # 96 training images, batch 32
    config = load_checkpoint(augmented / "last.pt")["config"]
    assert config["augment"] is True and config["eps_ramp_epochs"] == 0.0
    capsys.readouterr()
    assert main([*base, "--augment", "--out", str(plain), "--resume", *data]) == 2
    assert "augment" in capsys.readouterr().err


def test_a_network_starts_from_its_seed_whatever_the_global_generator(tmp_path, monkeypatch):
    """torch's global generator is seeded differently in every process; the initial weights of
    what `train` and `supernet train` build follow --seed alone."""
    import robnas.cli.train as train_cli

    seen: list[dict[str, torch.Tensor]] = []

    def record(args, cfg, model, dataset, label, **kw):  # type: ignore[no-untyped-def]
        seen.append({k: v.clone() for k, v in model.state_dict().items()})
        return 0

    monkeypatch.setattr(train_cli, "_run", record)
    for argv in (
        ["train", ARCH, "--preset", "tiny"],
        ["supernet", "train", "--space", "nb201", "--preset", "tiny"],
    ):
        seen.clear()
        for global_seed, seed in ((1, "0"), (2, "0"), (2, "1")):
            torch.manual_seed(global_seed)
            assert main([*argv, "--seed", seed, "--out", str(tmp_path / "run")]) == 0
        first, again, other = seen
        assert all(torch.equal(first[k], again[k]) for k in first)
        assert not all(torch.equal(first[k], other[k]) for k in first)
