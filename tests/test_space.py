from __future__ import annotations

import numpy as np
import pytest
import torch

from robnas import models
from robnas.errors import InvalidSpace, UnknownName
from robnas.models import sizing
from robnas.space.search_space import get_space, space_names

# cell spaces; the macro space (wrn) has its own tests in test_macro_space.py
SPACES = [name for name in space_names() if get_space(name).kind == "cell"]


def test_builtin_spaces():
    assert SPACES == ["darts", "nb201"]
    darts, nb201 = get_space("darts"), get_space("nb201")
    assert (
        darts.num_edges == 14
        and darts.size == 4**14
        and darts.ops == ("skip_connect", "sep_conv_3x3")
    )
    assert nb201.num_edges == 6 and nb201.size == 15625 and len(nb201.edge_choices) == 5


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("free", [False, True])
def test_every_space_samples_validates_builds_and_trains(name, free):
    space = get_space(name)
    macro = space.resolve_macro("tiny")
    rng = np.random.default_rng(0)
    g = space.sample(rng, free=free, macro=macro)
    assert space.validate(g, macro) is g
    assert len(g.cells) == (space.num_layers(macro) if free else 1)
    net = models.build(space, g, macro)
    x = torch.rand(2, 3, 32, 32)
    out = net(x)
    assert out.shape == (2, 10)
    out.logsumexp(1).sum().backward()
    assert sizing.num_params(space, g, macro) == sum(p.numel() for p in net.parameters())
    assert space.decode(space.encode(g)) == g
    assert len(space.dimensions(free=free, macro=macro)) == len(space.encode(g))


@pytest.mark.parametrize("name", SPACES)
def test_mutate_and_neighbours_change_exactly_one_edge(name):
    space = get_space(name)
    rng = np.random.default_rng(3)
    g = space.sample(rng)
    for _ in range(20):
        m = space.mutate(g, rng)
        diff = sum(a != b for a, b in zip(space.encode(g), space.encode(m)))
        assert diff == 1
    neighbours = space.neighbours(g)
    assert len(neighbours) == space.num_edges * (len(space.edge_choices) - 1)
    assert len(set(neighbours)) == len(neighbours) and g not in neighbours


def test_sampling_is_seeded():
    space = get_space("darts")
    a = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    b = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert a == b
    assert space.sample(np.random.default_rng(8)) != a[0]


def test_density_and_edge_density():
    space = get_space("darts")
    full = space.parse(",".join(["11"] * 14))
    half = space.parse(",".join(["10"] * 7 + ["00"] * 7))
    assert space.density(full) == 1.0 and space.edge_density(full) == 1.0
    assert space.density(half) == 0.25 and space.edge_density(half) == 0.5


def test_nb201_parameter_counts_match_the_benchmark():
    space = get_space("nb201")
    big = space.parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    # NAS-Bench-201 reports 1.5315M (largest) and 0.0733M (smallest) parameters on CIFAR-10
    assert sizing.num_params(space, big) == 1_531_546
    assert sizing.min_params(space) == 73_306


def test_user_space_file(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text(
        'name = "mine"\n[cell]\ninputs = 1\nnodes = 2\nedge = "choice"\n'
        'ops = ["none", "skip_connect", "nor_conv_3x3"]\noutput = "last"\n'
        '[macro]\nfamily = "nb201"\nC = 8\nN = 1\n'
    )
    space = get_space(str(path))
    assert space.name == "mine" and space.num_edges == 3 and space.size == 27
    g = space.sample(np.random.default_rng(0))
    assert models.build(space, g)(torch.rand(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize(
    "body, message",
    [
        ("[cell]\ninputs = 1\n", "missing field 'name'"),
        ('name = "x"\n[cell]\ninputs = "two"\n', "'cell.inputs' must be int"),
        (
            'name = "x"\n[cell]\ninputs = 1\nnodes = 2\nedge = "any"\nops = ["skip_connect"]\n[macro]\nfamily = "nb201"\n',
            "cell.edge must be",
        ),
        (
            'name = "x"\n[cell]\ninputs = 1\nnodes = 2\nedge = "choice"\nops = ["conv9"]\n[macro]\nfamily = "nb201"\n',
            "unknown op 'conv9'",
        ),
        (
            'name = "x"\n[cell]\ninputs = 1\nnodes = 2\nedge = "choice"\nops = ["skip_connect"]\n[macro]\nfamily = "darts"\n',
            "needs cell.inputs = 2",
        ),
        (
            'name = "x"\n[cell]\ninputs = 1\nnodes = 2\nedge = "choice"\nops = ["skip_connect"]\n[macro]\nfamily = "nb201"\nwidth = 3\n',
            "unknown field 'macro.width'",
        ),
        ('name = "x"\n[cell\n', "not valid TOML"),
    ],
)
def test_malformed_space_files_name_the_field(tmp_path, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body)
    with pytest.raises(InvalidSpace, match=message):
        get_space(str(path))


def test_unknown_space_and_size():
    with pytest.raises(UnknownName, match="known: darts, nb201"):
        get_space("resnet")
    with pytest.raises(UnknownName, match="unknown size 'huge'; known: paper, small, tiny"):
        get_space("darts").resolve_macro("huge")
    with pytest.raises(InvalidSpace, match="not found"):
        get_space("missing/space.toml")
