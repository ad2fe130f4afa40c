"""The dense-start sampler (progressive shrinking from the whole supernet to uniform paths)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from robnas.config import TrainConfig
from robnas.data.datasets import ImageData
from robnas.errors import CheckpointError, ConfigError
from robnas.models.samplers import DenseStartSampler, make_sampler
from robnas.models.supernet import Supernet
from robnas.space.search_space import get_space
from robnas.training.loop import load_checkpoint, train


def noise_images(n: int) -> ImageData:
    """`n` random 32x32 images with random labels: enough to drive a few training steps."""
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return ImageData(images, torch.randint(0, 10, (n,), generator=gen), tuple("abcdefghij"))


def density(space, genotype) -> float:
    """Fraction of (edge, op) bits on in the genotype's cell."""
    edges = [edge for node in genotype.cells[0] for edge in node]
    return sum(len(edge) for edge in edges) / (len(edges) * len(space.ops))


def test_shrinks_from_the_whole_supernet_to_uniform_paths() -> None:
    space = get_space("darts")
    sampler = DenseStartSampler(space, seed=0)
    sampler.start(400)  # dense over the first 200 draws
    draws = [sampler.sample() for _ in range(2000)]
    for g in draws[:5]:
        space.validate(g)
    assert density(space, draws[0]) == 1.0  # the first path is the whole supernet
    early = np.mean([density(space, g) for g in draws[:20]])
    middle = np.mean([density(space, g) for g in draws[90:110]])  # p = 0.75 around draw 100
    late = np.mean([density(space, g) for g in draws[200:]])
    assert early > 0.9
    assert 0.68 < middle < 0.82
    assert abs(late - 0.5) < 0.01  # 1,800 draws x 28 bits: sd 0.003


def test_is_uniform_until_told_the_runs_length() -> None:
    space = get_space("darts")
    sampler = DenseStartSampler(space, seed=0)
    assert abs(np.mean([density(space, sampler.sample()) for _ in range(500)]) - 0.5) < 0.02


def test_resumes_mid_schedule() -> None:
    space = get_space("darts")
    a = make_sampler("dense_start", space, seed=4)
    a.start(60)
    for _ in range(11):
        a.sample()
    b = make_sampler("dense_start", space, seed=9)
    b.load_state_dict(a.state_dict())
    assert [a.sample() for _ in range(40)] == [b.sample() for _ in range(40)]


def test_samples_uniformly_on_a_space_with_one_op_per_edge() -> None:
    space = get_space("nb201")  # the tiny preset names dense_start whatever the space
    dense, uniform = DenseStartSampler(space, seed=5), make_sampler("uniform_op", space, seed=5)
    dense.start(100)
    assert [dense.sample() for _ in range(20)] == [uniform.sample() for _ in range(20)]


def test_refuses_a_fraction_outside_the_run() -> None:
    with pytest.raises(ConfigError, match="fraction"):
        DenseStartSampler(get_space("darts"), seed=0, dense=1.5)


def test_training_loop_schedules_it_over_the_whole_run(tmp_path) -> None:
    data = noise_images(40)
    cfg = TrainConfig(
        epochs=2,
        batch_size=8,
        lr=0.01,
        method="clean",
        sampler="dense_start",
        val_size=8,
        recal_batches=1,
        augment=False,
    )
    torch.manual_seed(0)
    train(Supernet("darts", {"C": 4, "layers": 3}), data, data, cfg, tmp_path)
    state = load_checkpoint(tmp_path / "last.pt", "supernet:darts")["sampler"]
    assert state["name"] == "dense_start"
    assert state["dense_steps"] == 5 and state["drawn"] == 10  # 2 epochs x 5 steps, half dense


def test_a_run_written_before_the_config_named_its_sampler_resumes(tmp_path) -> None:
    """Checkpoints from before TrainConfig.sampler hold the sampler only in their trainer state:
    resuming with that sampler is the same run, with another one it is refused."""
    data = noise_images(16)
    cfg = TrainConfig(
        epochs=1, batch_size=8, method="clean", sampler="uniform_density", val_size=4,
        val_steps=1, val_paths=1, recal_batches=1, augment=False,
    )  # fmt: skip
    train(Supernet("nb201", {"C": 4, "N": 1}), data, data, cfg, tmp_path)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=False)
    del ckpt["config"]["sampler"]
    torch.save(ckpt, tmp_path / "last.pt")
    longer = dataclasses.replace(cfg, epochs=2)
    with pytest.raises(CheckpointError, match=r"settings \(epochs\)"):  # only what changed
        train(Supernet("nb201", {"C": 4, "N": 1}), data, data, longer, tmp_path, resume=True)
    train(Supernet("nb201", {"C": 4, "N": 1}), data, data, cfg, tmp_path, resume=True)
    other = dataclasses.replace(cfg, sampler="uniform_op")
    with pytest.raises(CheckpointError, match="sampler"):
        train(Supernet("nb201", {"C": 4, "N": 1}), data, data, other, tmp_path, resume=True)
