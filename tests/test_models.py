from __future__ import annotations

import pytest
import torch

from robnas.errors import UnknownName
from robnas.models import sizing
from robnas.models.network import DartsNetwork
from robnas.models.resolve import build, published_names, resolve_arch


def _count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# Trainable parameters of the released models as built from the released code's layer
# definitions (the paper's table quotes 6.89M / 5.49M / 33.42M, which also counts BN buffers).
PUBLISHED_PARAMS = {
    "robnet_large": 6_842_710,
    "robnet_free": 5_439_790,
    "robnet_large_v2": 33_326_666,
}


@pytest.mark.parametrize("name", published_names())
def test_published_architectures_build_with_their_counts(name):
    spec = resolve_arch(name)
    with torch.device("meta"):
        model = spec.build()
    assert isinstance(model, DartsNetwork)
    assert _count(model) == PUBLISHED_PARAMS[name]
    assert sizing.num_params(spec.space, spec.genotype, spec.macro) == PUBLISHED_PARAMS[name]
    assert isinstance(model.normalize, torch.nn.Identity)  # released models take raw [0,1] input


def test_robnet_free_has_one_cell_per_layer_and_large_shares_one():
    assert len(resolve_arch("robnet_free").genotype.cells) == 20
    assert resolve_arch("robnet_large").genotype.shared
    assert resolve_arch("robnet_large_v2").macro["C"] == 64


def test_build_accepts_genotype_strings_objects_and_macro_overrides():
    spec = resolve_arch("robnet_large", C=8, layers=5)
    g = spec.genotype
    a = build(g, C=8, layers=5)
    b = build(g.to_str(), C=8, layers=5)
    assert _count(a) == _count(b) == sizing.num_params(spec.space, g, spec.macro)
    assert build(
        "nb201:|skip_connect~0|+|none~0|none~1|+|none~0|none~1|nor_conv_1x1~2|", size="tiny"
    )(torch.rand(1, 3, 32, 32)).shape == (1, 10)
    assert build(g, dataset="cifar100", C=8, layers=5)(torch.rand(1, 3, 32, 32)).shape == (1, 100)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(UnknownName, match="robnet_large"):
        build("robnet_huge")
    with pytest.raises(UnknownName, match="prefix"):
        build("|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|")


def test_node_without_edges_is_zero_in_a_reduction_cell():
    # A cell whose first node has no input: its output channels for that node must be zeros.
    codes = ",".join(["00", "00"] + ["11"] * 12)
    net = build(f"{codes}", space="darts", C=8, layers=3).eval()
    outputs: dict[int, torch.Tensor] = {}
    for layer in (0, 1):  # a normal cell, then the first reduction cell (layers 1 and 2)
        net.cells[layer].register_forward_hook(
            lambda _m, _i, out, layer=layer: outputs.__setitem__(layer, out)
        )
    assert net(torch.rand(2, 3, 32, 32)).isfinite().all()
    assert net.cells[1].dag.reduction and not net.cells[0].dag.reduction
    for layer, (channels, size) in {0: (8, 32), 1: (16, 16)}.items():
        out = outputs[layer]
        # four nodes concatenated, node 0 first: its channels at the cell's (reduced) size
        assert out.shape == (2, 4 * channels, size, size)
        assert torch.equal(out[:, :channels], torch.zeros(2, channels, size, size)), layer
        assert out[:, channels:].abs().amax(dim=(0, 2, 3)).gt(0).all(), layer  # nodes 1-3 work


def test_published_cell_at_a_preset_size():
    spec = resolve_arch("robnet_large", size="tiny")
    assert spec.macro["C"] == 8 and spec.macro["layers"] == 5 and not spec.macro["normalize"]
    assert resolve_arch("robnet_large", size="tiny", C=12).macro["C"] == 12
