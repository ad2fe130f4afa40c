from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from robnas.data.datasets import ImageData
from robnas.errors import UnknownName
from robnas.genotype import Genotype
from robnas.models.supernet import (
    Supernet,
    UniformDensitySampler,
    UniformOpSampler,
    make_sampler,
    recalibrate,
    recalibrate_bn,
)
from robnas.space.search_space import get_space

MACROS = {"darts": {"C": 8, "layers": 4}, "nb201": {"C": 8, "N": 1}}


def _scramble(model: nn.Module, seed: int) -> None:
    """Random BN statistics and affine weights, so copying them in `extract` matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                if m.affine:
                    m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                    m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.1)


@pytest.mark.parametrize("space_name", ["darts", "nb201"])
@pytest.mark.parametrize("free", [False, True])
@pytest.mark.parametrize("sampler_cls", [UniformOpSampler, UniformDensitySampler])
def test_extracted_network_matches_supernet_path(space_name, free, sampler_cls):
    supernet = Supernet(space_name, MACROS[space_name])
    _scramble(supernet, 1)
    supernet.eval()
    sampler = sampler_cls(supernet.space, seed=3, free=free, macro=supernet.macro)
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    outputs = []
    for _ in range(3):
        g = sampler.sample()
        assert len(g.cells) == (supernet.space.num_layers(supernet.macro) if free else 1)
        alone = supernet.extract(g).eval()
        assert set(alone.state_dict()) <= set(supernet.net.state_dict())
        with torch.no_grad():
            a, b = supernet(x, g), alone(x)
            with supernet.using(g):
                c = supernet(x)
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(a, c, rtol=0, atol=0)
        outputs.append(a)
    # different paths compute different functions (the path really selects ops)
    assert not torch.allclose(outputs[0], outputs[1])


@pytest.mark.parametrize("space_name", ["darts", "nb201"])
def test_forward_runs_only_active_ops(space_name):
    supernet = Supernet(space_name, MACROS[space_name])
    ran: set[str] = set()
    for name, module in supernet.net.named_modules():
        parts = name.split(".")
        if "edges" in parts and parts.index("edges") == len(parts) - 3:
            module.register_forward_hook(lambda m, i, o, n=name: ran.add(n))
    g = UniformOpSampler(supernet.space, seed=5).sample()
    supernet(torch.rand(2, 3, 32, 32), g)
    cells = [n for n, m in supernet.net.named_modules() if n.endswith(".dag")]
    expected = {
        f"{cell}.edges.{node}_{pred}.{op}"
        for cell in cells
        for node, edges in enumerate(g.cells[0])
        for pred, edge in enumerate(edges)
        for op in edge
    }
    assert ran == expected


def test_forward_without_path_is_an_error():
    supernet = Supernet("nb201", MACROS["nb201"])
    with pytest.raises(ValueError, match="set_path"):
        supernet(torch.rand(1, 3, 32, 32))


@pytest.mark.parametrize("cls", [UniformOpSampler, UniformDensitySampler])
@pytest.mark.parametrize("space_name", ["darts", "nb201"])
def test_samplers_are_seeded_and_resumable(cls, space_name):
    space = get_space(space_name)
    a, b = cls(space, seed=7), cls(space, seed=7)
    assert [a.sample() for _ in range(5)] == [b.sample() for _ in range(5)]
    state = a.state_dict()
    expected = [a.sample() for _ in range(5)]
    c = cls(space, seed=99)
    c.load_state_dict(state)
    assert [c.sample() for _ in range(5)] == expected
    for g in expected:
        space.validate(g)
    other = UniformDensitySampler if cls is UniformOpSampler else UniformOpSampler
    with pytest.raises(ValueError, match="sampler state"):
        other(space, seed=0).load_state_dict(state)


@pytest.mark.parametrize("space_name", ["darts", "nb201"])
def test_uniform_density_sampler_draws_every_density_level_equally(space_name):
    from scipy.stats import chisquare

    space = get_space(space_name)
    n = 1000
    levels = len(space.ops) * space.num_edges if space.edge_kind == "subset" else space.num_edges

    def level_counts(sampler) -> np.ndarray:
        active = [int(space.onehot(sampler.sample()).sum()) for _ in range(n)]
        return np.bincount(active, minlength=levels + 1)

    uniform = level_counts(UniformDensitySampler(space, 0))
    assert uniform[0] == 0  # at least one active op
    assert chisquare(uniform[1:]).pvalue > 0.01
    # RobNet's per-edge sampling concentrates the density: the same test rejects it
    per_edge = level_counts(UniformOpSampler(space, 0))
    assert chisquare(per_edge[1:] + 1e-9).pvalue < 1e-6


def test_make_sampler_names():
    space = get_space("darts")
    assert isinstance(make_sampler("uniform_density", space, 0), UniformDensitySampler)
    with pytest.raises(UnknownName, match="uniform_op"):
        make_sampler("nope", space, 0)


def test_recalibrate_with_no_batches_keeps_the_statistics():
    supernet = Supernet("nb201", {"C": 4, "N": 1})
    _scramble(supernet, 3)
    before = {k: b.clone() for k, b in supernet.named_buffers()}
    g = supernet.space.sample(np.random.default_rng(0))
    labels = torch.arange(4).repeat_interleave(8)
    data = ImageData(
        torch.randint(0, 256, (32, 3, 32, 32), dtype=torch.uint8), labels, tuple("abcd")
    )
    gen = torch.Generator().manual_seed(0)
    recalibrate(supernet, data, 0, 16, gen, torch.device("cpu"), genotype=g)
    assert all(torch.equal(b, before[k]) for k, b in supernet.named_buffers())
    recalibrate(supernet, data, 1, 16, gen, torch.device("cpu"), genotype=g)
    stem_mean = supernet.net.stem[1].running_mean
    assert not torch.equal(stem_mean, before["net.stem.1.running_mean"])


def test_recalibrate_bn_uses_cumulative_batch_statistics():
    supernet = Supernet("nb201", MACROS["nb201"])
    _scramble(supernet, 2)
    supernet.eval()
    g = Genotype.from_str(
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|none~2|", "nb201"
    )
    unused = supernet.net.stages[0][0].dag.edges["0_0"]["nor_conv_1x1"][2]  # BN off the path
    unused_mean = unused.running_mean.clone()
    stem_bn = supernet.net.stem[1]
    momentum = stem_bn.momentum
    gen = torch.Generator().manual_seed(0)
    feed = [torch.rand(8, 3, 32, 32, generator=gen) for _ in range(3)]
    captured = []
    hook = supernet.net.stem[0].register_forward_hook(lambda m, i, o: captured.append(o.detach()))
    used = recalibrate_bn(supernet, feed, genotype=g, n_batches=2)
    hook.remove()
    assert used == 2 and len(captured) == 2
    expected = torch.stack([c.mean(dim=(0, 2, 3)) for c in captured]).mean(0)
    torch.testing.assert_close(stem_bn.running_mean, expected, rtol=1e-5, atol=1e-6)
    assert int(stem_bn.num_batches_tracked) == 2
    assert stem_bn.momentum == momentum
    assert not supernet.training and not stem_bn.training
    torch.testing.assert_close(unused.running_mean, unused_mean, rtol=0, atol=0)
