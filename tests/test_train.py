from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from robnas.attacks import PGD
from robnas.config import TRAIN_PRESETS, TrainConfig, with_overrides
from robnas.data.datasets import ImageData, load_dataset, split_train_val
from robnas.errors import CheckpointError, ConfigError
from robnas.models.resolve import build
from robnas.models.supernet import Supernet, UniformDensitySampler, UniformOpSampler
from robnas.training.loop import evaluate_robust, finetune, load_checkpoint, train
from robnas.training.steps import AdversarialStep, WarmupCosine, make_optimizer, param_groups

NB201_ARCH = "nb201:|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|skip_connect~1|nor_conv_3x3~2|"


def synthetic(n: int, seed: int) -> ImageData:
    """Learnable toy data: the label sets the mean brightness of one colour channel."""
    gen = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=gen)
    images = torch.rand(n, 3, 32, 32, generator=gen) * 0.5
    images[torch.arange(n), labels % 3] += 0.05 * labels[:, None, None].float()
    return ImageData((images * 255).to(torch.uint8), labels, tuple(str(i) for i in range(10)))


def tiny_cfg(**kw) -> TrainConfig:
    base = TrainConfig(
        epochs=2, batch_size=16, lr=0.1, warmup_epochs=0.5, steps=2, alpha=4 / 255,
        val_size=16, val_steps=2, val_paths=1, recal_batches=1,
    )  # fmt: skip
    return dataclasses.replace(base, **kw)


def test_no_weight_decay_on_batchnorm_and_bias():
    model = build(NB201_ARCH, C=8, N=1)
    decay, plain = param_groups(model, 1e-4)
    assert decay["weight_decay"] == 1e-4 and plain["weight_decay"] == 0.0
    bn = {id(p) for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters()}
    assert bn and bn <= {id(p) for p in plain["params"]}
    assert id(model.classifier.bias) in {id(p) for p in plain["params"]}
    assert id(model.classifier.weight) in {id(p) for p in decay["params"]}
    assert all(p.ndim == 4 or p.ndim == 2 for p in decay["params"])
    assert len(decay["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_warmup_then_cosine_and_lr_scaling():
    sched = WarmupCosine(total=100, warmup=10, start=0.1, final=0.01)
    assert sched(0) == pytest.approx(0.1)
    assert sched(5) == pytest.approx(0.55)
    assert sched(10) == pytest.approx(1.0)
    assert sched(55) == pytest.approx(0.01 + 0.99 * 0.5)
    assert sched(100) == pytest.approx(0.01)
    assert all(sched(i) >= sched(i + 1) for i in range(10, 100))
    assert TRAIN_PRESETS["paper"].peak_lr == pytest.approx(1.2)
    assert TrainConfig(batch_size=128).peak_lr == pytest.approx(0.1)


def test_config_rejects_bad_values():
    with pytest.raises(ConfigError, match="method"):
        TrainConfig(method="sgd")
    with pytest.raises(ConfigError, match="unknown setting"):
        with_overrides(TrainConfig(), epoch=3)
    assert with_overrides(TrainConfig(), epochs=3, lr=None).lr == TrainConfig().lr


@pytest.mark.parametrize(
    "space_name,macro", [("darts", {"C": 4, "layers": 3}), ("nb201", {"C": 8, "N": 1})]
)
@pytest.mark.parametrize("method", ["pgd", "trades", "fgsm-rs"])
def test_every_sampled_path_trains(space_name, macro, method):
    torch.manual_seed(0)
    supernet = Supernet(space_name, macro)
    data = synthetic(32, 0)
    x, y = data.floats(), data.labels
    cfg = tiny_cfg(method=method, lr=0.05)
    sampler = UniformDensitySampler(supernet.space, seed=1)
    for _ in range(2):
        g = sampler.sample()
        supernet.set_path(g)
        step = AdversarialStep(cfg, make_optimizer(supernet, cfg), None)
        gen = torch.Generator().manual_seed(0)
        losses = [float(step(supernet, x, y, gen)[0]) for _ in range(6)]
        assert all(math.isfinite(v) for v in losses)
        assert losses[-1] < losses[0], (g.to_str(), losses)


def test_attack_steps_leave_no_weight_gradients():
    model = build(NB201_ARCH, C=8, N=1)
    cfg = tiny_cfg()
    data = synthetic(8, 0)
    opt = make_optimizer(model, cfg)
    step = AdversarialStep(cfg, opt, None)
    seen = []
    hooks = [p.register_hook(lambda g: seen.append(1)) for p in model.parameters()]
    step(model, data.floats(), data.labels, torch.Generator().manual_seed(0))
    for h in hooks:
        h.remove()
    # exactly one weight-gradient pass (the update), none during the 2 attack steps
    assert len(seen) == len(list(model.parameters()))


def test_resume_reproduces_uninterrupted_run(tmp_path, monkeypatch):
    cfg = tiny_cfg()
    train_data, val_data = synthetic(48, 0), synthetic(16, 1)

    def run(out, stop_after=None, resume=False):
        torch.manual_seed(0)  # same initial weights
        supernet = Supernet("nb201", {"C": 4, "N": 1})
        sampler = UniformOpSampler(supernet.space, seed=2)
        if stop_after is not None:
            # simulate a crash right after the checkpoint of epoch `stop_after`
            import robnas.training.loop as tr

            original = tr._write_csv

            def crash(path, history):
                original(path, history)
                if len(history) == stop_after:
                    raise KeyboardInterrupt

            monkeypatch.setattr(tr, "_write_csv", crash)
            with pytest.raises(KeyboardInterrupt):
                train(supernet, train_data, val_data, cfg, out, sampler=sampler)
            monkeypatch.setattr(tr, "_write_csv", original)
            torch.manual_seed(123)  # a fresh process would start from other weights
            supernet = Supernet("nb201", {"C": 4, "N": 1})
            sampler = UniformOpSampler(supernet.space, seed=2)
        result = train(supernet, train_data, val_data, cfg, out, sampler=sampler, resume=resume)
        return supernet, result

    straight, r1 = run(tmp_path / "a")
    resumed, r2 = run(tmp_path / "b", stop_after=1, resume=True)
    for (k, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), k  # bit for bit on the CPU
    assert [{k: v for k, v in h.items() if k != "seconds"} for h in r1.history] == [
        {k: v for k, v in h.items() if k != "seconds"} for h in r2.history
    ]
    assert r1.best == r2.best
    log = (tmp_path / "b" / "log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,lr,train_loss") and len(log) == 3
    ckpt = load_checkpoint(tmp_path / "b" / "last.pt", "supernet:nb201")
    assert ckpt["epoch"] == 2 and ckpt["sampler"]["name"] == "uniform_op"
    assert (tmp_path / "b" / "best.pt").exists()


def test_existing_run_needs_resume_and_same_settings(tmp_path):
    model = build(NB201_ARCH, C=4, N=1)
    cfg = tiny_cfg(epochs=1)
    data = synthetic(32, 0)
    train(model, data, data, cfg, tmp_path)
    with pytest.raises(ConfigError, match="--resume"):
        train(model, data, data, cfg, tmp_path)
    with pytest.raises(CheckpointError, match="lr"):
        train(model, data, data, dataclasses.replace(cfg, lr=0.2), tmp_path, resume=True)
    other = build("resnet18")
    with pytest.raises(CheckpointError, match="pass the matching ARCH"):
        train(other, data, data, cfg, tmp_path, resume=True)


def test_a_checkpoint_older_than_a_setting_resumes_when_it_is_at_its_default(tmp_path):
    # a run written before `clean_epochs` existed trained without a clean start: the default
    from robnas.checkpoint import read_checkpoint, save_checkpoint

    cfg = tiny_cfg(epochs=2)
    data = synthetic(32, 0)
    train(build(NB201_ARCH, C=4, N=1), data, data, dataclasses.replace(cfg, epochs=1), tmp_path)
    last = tmp_path / "last.pt"
    ckpt = read_checkpoint(last, complete=True)
    del ckpt["config"]["clean_epochs"]
    ckpt["config"]["epochs"] = 2  # as if the first of two epochs had been written
    save_checkpoint(last, ckpt)
    with pytest.raises(CheckpointError, match="clean_epochs"):
        train(
            build(NB201_ARCH, C=4, N=1),
            data,
            data,
            dataclasses.replace(cfg, clean_epochs=1.0),
            tmp_path,
            resume=True,
        )
    result = train(build(NB201_ARCH, C=4, N=1), data, data, cfg, tmp_path, resume=True)
    assert [row["epoch"] for row in result.history] == [1, 2]


def test_bad_checkpoints_are_one_line_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt") as err:
        load_checkpoint(junk)
    assert "\n" not in str(err.value)
    model = build(NB201_ARCH, C=4, N=1)
    train(model, synthetic(32, 0), synthetic(16, 1), tiny_cfg(epochs=1), tmp_path / "run")
    good = (tmp_path / "run" / "last.pt").read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(cut)
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not a robnas checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not nb201:other"):
        load_checkpoint(tmp_path / "run" / "last.pt", "nb201:other")


def test_finetune_and_evaluate_robust():
    torch.manual_seed(0)
    model = build(NB201_ARCH, C=4, N=1)
    before = [p.detach().clone() for p in model.parameters()]
    data = synthetic(32, 0)
    stats = finetune(model, data, tiny_cfg(epochs=1), generator=torch.Generator().manual_seed(0))
    assert set(stats) == {"train_loss", "train_adv_acc"}
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    model.train()
    scores = evaluate_robust(model, data, PGD(8 / 255, steps=3), batch_size=16)
    assert 0.0 <= scores["robust_acc"] <= scores["clean_acc"] <= 1.0
    assert model.training


def test_tiny_pgd_training_is_robust_above_chance(data_root):
    data = load_dataset("cifar10", "train", data_dir=data_root, limit=1000, seed=0)
    train_data, val_data = split_train_val(data, 200, seed=0)
    torch.manual_seed(0)
    model = build(NB201_ARCH, C=8, N=1)
    cfg = TrainConfig(
        epochs=3, batch_size=50, lr=0.2, warmup_epochs=0.5, steps=2, alpha=4 / 255,
        val_size=200, val_steps=10, val_every=3,
    )  # fmt: skip
    result = train(model, train_data, val_data, cfg)
    # PGD-10 at eps 8/255 on held-out images: clearly above the 10% of guessing
    assert result.final["robust_acc"] > 0.12, result.final
    assert result.final["clean_acc"] >= result.final["robust_acc"]


class _Brightness(nn.Module):
    """Predicts class 1 for bright images (mean > 0.5), class 0 for dark ones."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = x.mean(dim=(1, 2, 3)) * self.scale - 0.5
        return torch.stack([-m, m] + [torch.full_like(m, -9.0)] * 8, dim=1)


class _Brighten:
    """An 'attack' that brightens every image: it turns the clean mistakes on label 1 right."""

    seed = 0

    def __call__(self, model, images, labels, *, generator=None, only=None):
        return (images + 0.5).clamp(0.0, 1.0)


def test_robust_counts_only_examples_also_clean_correct():
    images = torch.full((8, 3, 4, 4), 51, dtype=torch.uint8)  # dark: clean predicts class 0
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    data = ImageData(images, labels, tuple(str(i) for i in range(10)))
    scores = evaluate_robust(_Brightness(), data, _Brighten(), batch_size=4)
    # clean: the four 0s right; attacked: the four 1s right, but none is right on both
    assert scores == {"clean_acc": 0.5, "robust_acc": 0.0}


def test_clean_method_trains_without_an_attack(monkeypatch):
    import robnas.training.steps as steps_module

    def no_attack(*args, **kwargs):
        raise AssertionError("standard training must not attack")

    cfg = tiny_cfg(method="clean", epochs=2, val_steps=1)
    torch.manual_seed(0)
    model = build(NB201_ARCH, C=4, N=1)
    step = AdversarialStep(cfg, make_optimizer(model, cfg), None)
    x = torch.rand(4, 3, 32, 32)
    assert step.craft(model, x, torch.zeros(4, dtype=torch.long), torch.Generator()) is x
    monkeypatch.setattr(steps_module, "training_attack", lambda *a, **k: no_attack)
    data = synthetic(64, 0)
    result = train(model, data, data, cfg)
    assert len(result.history) == 2
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def test_progress_goes_to_a_callback_not_the_terminal():
    import robnas.training.loop as loop_module

    reports = []
    model = build(NB201_ARCH, C=4, N=1)
    train(model, synthetic(48, 0), synthetic(16, 1), tiny_cfg(epochs=1), progress=reports.append)
    kinds = [r.kind for r in reports]
    assert kinds[0] == "epoch_start" and kinds[-1] == "epoch_end" and "step" in kinds
    assert reports[-1].row is not None and "robust_acc" in reports[-1].row
    assert reports[-2].step == reports[-2].steps == 3 and reports[-2].loss is not None
    from pathlib import Path

    assert "tqdm" not in Path(loop_module.__file__).read_text()


def test_chunked_step_equals_one_step_on_the_whole_batch():
    # no BatchNorm: accumulating two half batches is the full-batch gradient
    cfg = tiny_cfg(method="clean")

    def run(chunks):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
        step = AdversarialStep(cfg, make_optimizer(model, cfg), None)
        data = synthetic(16, 0)
        step(model, data.floats(), data.labels, torch.Generator(), chunks=chunks)
        return list(model.parameters())

    for a, b in zip(run(1), run(2), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_clean_start_counts_steps_across_epochs_and_resume(tmp_path, monkeypatch):
    # 64 images / batch 16 = 4 steps an epoch; clean_epochs=1.25 trains steps 0-4 clean,
    # so only steps 5, 6, 7 (all in epoch 2) craft attacks, also when epoch 2 runs after a resume
    crafted: list[int] = []
    original = AdversarialStep.craft

    def counting(self, *args, **kwargs):
        crafted.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(AdversarialStep, "craft", counting)
    cfg = tiny_cfg(method="fgsm-rs", clean_epochs=1.25, val_every=2)
    data = synthetic(64, 0)
    torch.manual_seed(0)
    train(build(NB201_ARCH, C=4, N=1), data, data, cfg, tmp_path / "a")
    assert len(crafted) == 3
    crafted.clear()
    import robnas.training.loop as loop

    write_csv = loop._write_csv

    def crash(path, history):  # a crash right after epoch 1's checkpoint
        write_csv(path, history)
        raise KeyboardInterrupt

    monkeypatch.setattr(loop, "_write_csv", crash)
    with pytest.raises(KeyboardInterrupt):
        train(build(NB201_ARCH, C=4, N=1), data, data, cfg, tmp_path / "b")
    assert crafted == []  # epoch 1 is all clean
    monkeypatch.setattr(loop, "_write_csv", write_csv)
    train(build(NB201_ARCH, C=4, N=1), data, data, cfg, tmp_path / "b", resume=True)
    assert len(crafted) == 3  # the resumed epoch 2 still starts with one clean step
    with pytest.raises(ConfigError, match="clean_epochs"):
        tiny_cfg(clean_epochs=3)
    # a finetune counts its clean start the same way
    crafted.clear()
    model = build(NB201_ARCH, C=4, N=1)
    finetune(model, data, dataclasses.replace(cfg, epochs=2, clean_epochs=1.25))
    assert len(crafted) == 3


def test_validation_recalibrates_on_batches_that_mix_classes(monkeypatch):
    # image folders load in class order: the first batches of the training split are one class
    import robnas.models.supernet as supernet_module
    import robnas.training.validate as validate_module

    first: list[torch.Tensor] = []

    def spy(model, batches, genotype=None, n_batches=4):
        first.append(next(iter(batches))[1])
        return 1

    monkeypatch.setattr(supernet_module, "recalibrate_bn", spy)
    labels = torch.arange(10).repeat_interleave(16)
    data = ImageData(torch.zeros(160, 3, 32, 32, dtype=torch.uint8), labels, tuple("0123456789"))
    cfg = tiny_cfg(val_paths=2, val_steps=1)
    validate_module.validate(Supernet("nb201", {"C": 4, "N": 1}), data, synthetic(16, 1), cfg)
    assert len(first) == 2 and all(len(b.unique()) >= 5 for b in first)
    assert torch.equal(first[0], first[1])  # every path recalibrates on the same batches


def test_eps_ramp_rises_after_the_clean_start_in_training_and_finetune(monkeypatch):
    # 64 images / batch 16 = 4 steps an epoch; clean_epochs=0.5 trains steps 0-1 clean, then
    # eps_ramp_epochs=1.0 raises eps over steps 2-5 (1/4, 2/4, 3/4, 1), then the full eps
    cfg = tiny_cfg(method="fgsm-rs", clean_epochs=0.5, eps_ramp_epochs=1.0, val_every=2)
    expected = [0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert [cfg.eps_scale(i, 4) for i in range(8)] == expected
    assert tiny_cfg(clean_epochs=0.5).eps_scale(2, 4) == 1.0  # no ramp: the full eps at once
    with pytest.raises(ConfigError, match="eps_ramp_epochs"):
        tiny_cfg(clean_epochs=0.5, eps_ramp_epochs=1.75)  # past the end of the 2 epochs
    sizes: list[float] = []
    original = AdversarialStep.craft

    def measuring(self, model, images, labels, generator, eps_scale=1.0):
        adv = original(self, model, images, labels, generator, eps_scale)
        sizes.append(round(float((adv - images).abs().max()) / cfg.eps, 3))
        return adv

    monkeypatch.setattr(AdversarialStep, "craft", measuring)
    data = synthetic(64, 0)
    torch.manual_seed(0)
    train(build(NB201_ARCH, C=4, N=1), data, data, cfg)
    # the largest perturbation of each crafted batch is that step's fraction of eps
    assert sizes == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    sizes.clear()
    finetune(build(NB201_ARCH, C=4, N=1), data, cfg)
    assert sizes == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
