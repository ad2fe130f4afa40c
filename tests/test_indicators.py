from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from robnas import models
from robnas.attacks import PGD
from robnas.errors import ConfigError, UnknownName
from robnas.genotype import Genotype
from robnas.indicators import INDICATORS, STRUCTURAL, IndicatorConfig, as_config, count_flops
from robnas.indicators.fsp import (
    deep_cells,
    fsp_cell_distances,
    fsp_dist,
    fsp_matrices,
    fsp_matrix,
)
from robnas.indicators.jacobian import jac_norm, jacobian_sq_norms
from robnas.indicators.robust import clean_accuracy, robust_accuracy
from robnas.indicators.structure import genotype_structure
from robnas.models.supernet import Supernet
from robnas.space.search_space import get_space

SPACE = get_space("darts")
MACRO = SPACE.resolve_macro("tiny", C=4, layers=3)


def _genotype(seed: int = 3) -> Genotype:
    return SPACE.sample(np.random.default_rng(seed))


def _tiny_net() -> nn.Module:
    return models.build(SPACE, _genotype(), MACRO)


def _batch(n: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 32, generator=gen), torch.randint(0, 10, (n,), generator=gen)


# ---- FSP -----------------------------------------------------------------------------------


def test_fsp_matrix_is_the_mean_outer_product_over_positions() -> None:
    gen = torch.Generator().manual_seed(1)
    f_in, f_out = torch.randn(2, 3, 4, 5, generator=gen), torch.randn(2, 6, 4, 5, generator=gen)
    ref = torch.zeros(2, 3, 6)
    for n in range(2):
        for s in range(4):
            for t in range(5):
                ref[n] += torch.outer(f_in[n, :, s, t], f_out[n, :, s, t])
    ref /= 20
    assert torch.allclose(fsp_matrix(f_in, f_out), ref, atol=1e-6)


def test_fsp_matrix_pools_a_higher_resolution_input_by_2x2_means() -> None:
    gen = torch.Generator().manual_seed(2)
    f_in, f_out = torch.randn(2, 3, 8, 8, generator=gen), torch.randn(2, 4, 4, 4, generator=gen)
    pooled = f_in.reshape(2, 3, 4, 2, 4, 2).mean(dim=(3, 5))
    ref = pooled.flatten(2) @ f_out.flatten(2).transpose(1, 2) / 16
    assert torch.allclose(fsp_matrix(f_in, f_out), ref, atol=1e-6)


def test_fsp_matrices_match_a_hand_run_of_the_cells() -> None:
    net = _tiny_net()
    net.train()  # fsp_matrices runs in eval mode and must restore this
    x, _ = _batch(4)
    got = fsp_matrices(net, x)
    assert net.training
    net.eval()
    g = net.genotype
    ref = []
    with torch.no_grad():
        s0 = s1 = net.stem(net.normalize(x))
        for layer, cell in enumerate(net.cells):
            out = cell(s0, s1, g.cell_for_layer(layer))
            f_in = s1
            if f_in.shape[-1] != out.shape[-1]:  # reduction cell
                n, c, h, w = f_in.shape
                f_in = f_in.reshape(n, c, h // 2, 2, w // 2, 2).mean(dim=(3, 5))
            hw = out.shape[-1] * out.shape[-2]
            ref.append(torch.bmm(f_in.flatten(2), out.flatten(2).transpose(1, 2)) / hw)
            s0, s1 = s1, out
    assert len(got) == 3 == len(ref)
    # layers=3 puts reductions at cells 1 and 2: their inputs were pooled
    assert got[0].shape == (4, 12, 16) and got[1].shape == (4, 16, 32)
    for a, b in zip(got, ref):
        assert a.shape == b.shape
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)


def test_fsp_distance_is_robnets_l2_loss_between_clean_and_adversarial() -> None:
    net = _tiny_net()
    x, y = _batch(5)
    cfg = IndicatorConfig(attack_steps=2, batch_size=3, seed=4)  # two batches
    per_cell = fsp_cell_distances(net, x, y, cfg)
    # reference: one batch, the same attack stream, squared Frobenius norm, mean over examples
    gen = torch.Generator().manual_seed(4)
    attack = PGD(eps=cfg.eps, steps=2)
    adv = torch.cat(
        [attack(net, x[:3], y[:3], generator=gen), attack(net, x[3:], y[3:], generator=gen)]
    )
    ref = [
        ((gc - ga) ** 2).sum(dim=(1, 2)).mean()
        for gc, ga in zip(fsp_matrices(net, x), fsp_matrices(net, adv))
    ]
    assert torch.allclose(per_cell, torch.stack(ref), rtol=1e-4)
    assert (per_cell > 0).all()
    mean_cfg = IndicatorConfig(attack_steps=2, batch_size=3, seed=4, fsp_reduction="mean")
    sizes = torch.tensor([float(g[0].numel()) for g in fsp_matrices(net, x[:1])])
    assert torch.allclose(fsp_cell_distances(net, x, y, mean_cfg), per_cell / sizes, rtol=1e-4)


def test_fsp_distance_is_zero_without_perturbation_and_reports_deep_mean() -> None:
    net = _tiny_net()
    x, y = _batch(4)
    zero = fsp_dist(net, x, y, cfg=IndicatorConfig(eps=0.0, attack_steps=1))
    assert zero == {
        "fsp_dist": 0.0,
        "fsp_dist_cell0": 0.0,
        "fsp_dist_cell1": 0.0,
        "fsp_dist_cell2": 0.0,
    }
    out = fsp_dist(net, x, y, cfg=IndicatorConfig(attack_steps=2))
    assert out["fsp_dist"] == out["fsp_dist_cell2"]  # the last third of 3 cells is cell 2
    picked = fsp_dist(net, x, y, cfg=IndicatorConfig(attack_steps=2, fsp_cells=(0, -1)))
    assert picked["fsp_dist"] == pytest.approx((out["fsp_dist_cell0"] + out["fsp_dist_cell2"]) / 2)


def test_deep_cells_default_is_the_last_third() -> None:
    cfg = IndicatorConfig()
    assert deep_cells(20, cfg) == list(range(13, 20))
    assert deep_cells(5, cfg) == [3, 4]
    assert deep_cells(1, cfg) == [0]
    assert deep_cells(8, IndicatorConfig(fsp_deep_fraction=0.5)) == [4, 5, 6, 7]
    with pytest.raises(ConfigError):
        deep_cells(3, IndicatorConfig(fsp_cells=(3,)))


def test_fsp_needs_cells() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))
    with pytest.raises(ConfigError, match="cells"):
        fsp_dist(model, *_batch(2), cfg=IndicatorConfig())


def test_fsp_on_a_supernet_path_equals_fsp_on_the_extracted_network() -> None:
    supernet = Supernet(SPACE, MACRO)
    g = _genotype(5)
    x, y = _batch(3)
    cfg = IndicatorConfig(attack_steps=2)
    with supernet.using(g):
        on_path = fsp_dist(supernet, x, y, cfg=cfg)
        density = INDICATORS.get("density")(supernet, x, y)
    extracted = fsp_dist(supernet.extract(g), x, y, cfg=cfg)
    assert on_path == pytest.approx(extracted, rel=1e-4)
    assert density == {"density": SPACE.density(g)}


# ---- Jacobian ------------------------------------------------------------------------------


def _linear_model() -> nn.Module:
    torch.manual_seed(7)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 10))


def test_jacobian_of_a_linear_model_is_its_weight_norm() -> None:
    model = _linear_model()
    expected = float(model[1].weight.detach().norm())  # J = W for every example
    x, y = torch.rand(5, 3, 4, 4), torch.zeros(5, dtype=torch.long)
    exact = jac_norm(model, x, y, cfg=IndicatorConfig(jac_method="exact"))
    assert exact == pytest.approx(expected, rel=1e-5)
    estimate = jac_norm(model, x, y, cfg=IndicatorConfig(jac_method="random", jac_projections=2000))
    assert estimate == pytest.approx(expected, rel=0.05)
    few = IndicatorConfig(jac_method="random", jac_projections=3, seed=1)
    assert jac_norm(model, x, y, cfg=few) == jac_norm(model, x, y, cfg=few)  # seeded
    other = IndicatorConfig(jac_method="random", jac_projections=3, seed=2)
    assert jac_norm(model, x, y, cfg=few) != jac_norm(model, x, y, cfg=other)
    # auto: 10 classes <= 10 projections, so exact
    assert jac_norm(model, x, y, cfg=IndicatorConfig()) == exact


def test_exact_jacobian_norm_matches_autograd_jacobian_on_a_cell_network() -> None:
    net = _tiny_net().eval()
    x, _ = _batch(2)
    sq = jacobian_sq_norms(net, x)
    for i in range(2):
        jac = torch.autograd.functional.jacobian(lambda v: net(v[None])[0], x[i])
        assert float(sq[i]) == pytest.approx(float(jac.pow(2).sum()), rel=1e-4)


# ---- robust accuracy -----------------------------------------------------------------------


def _threshold_model() -> nn.Module:
    # class 0 iff mean pixel > 0.5: logit0 = mean - 0.5, logit1 = 0
    linear = nn.Linear(3 * 4 * 4, 2)
    with torch.no_grad():
        linear.weight.zero_()
        linear.weight[0] = 1 / 48
        linear.bias.copy_(torch.tensor([-0.5, 0.0]))
    return nn.Sequential(nn.Flatten(), linear)


def test_robust_accuracy_on_a_known_threshold_model() -> None:
    model = _threshold_model()
    x = torch.stack([torch.full((3, 4, 4), v) for v in (0.52, 0.9, 0.3, 0.2)])
    y = torch.tensor([0, 0, 0, 1])  # 0.52: correct but within 8/255 of the boundary; 0.3: wrong
    attack = PGD(eps=8 / 255, steps=5, alpha=2 / 255)
    clean, robust = robust_accuracy(model, x, y, attack, batch_size=3)
    assert clean == 0.75
    assert robust == 0.5  # 0.52 is pushed over the boundary; 0.9 and 0.2 are far from it
    assert clean_accuracy(model, x, y) == 0.75
    assert robust_accuracy(model, x, y, PGD(eps=0.0, steps=1)) == (0.75, 0.75)


def test_robust_acc_indicator_names_the_attack() -> None:
    out = INDICATORS.get("robust_acc")(
        _threshold_model(), *_small_batch(), cfg={"eval_attack": "fgsm"}
    )
    assert set(out) == {"clean_acc", "fgsm_acc"}
    assert 0 <= out["fgsm_acc"] <= out["clean_acc"] <= 1


def _small_batch() -> tuple[torch.Tensor, torch.Tensor]:
    return torch.rand(4, 3, 4, 4, generator=torch.Generator().manual_seed(0)), torch.tensor(
        [0, 1, 0, 1]
    )


# ---- structure -----------------------------------------------------------------------------


def test_structural_indicators_and_genotype_structure_at_another_size() -> None:
    g = _genotype(11)
    net = models.build(SPACE, g, MACRO)
    x, y = _batch(1)
    assert INDICATORS.get("density")(net, x, y) == {"density": SPACE.density(g)}
    assert INDICATORS.get("edge_density")(net, x, y) == {"edge_density": SPACE.edge_density(g)}
    assert INDICATORS.get("num_params")(net, x, y)["num_params"] == sum(
        p.numel() for p in net.parameters()
    )
    assert INDICATORS.get("flops")(net, x, y)["flops"] == count_flops(net)
    bigger = SPACE.resolve_macro("tiny", C=6, layers=4)
    built = models.build(SPACE, g, bigger)
    info = genotype_structure(SPACE, g, bigger)
    assert info["num_params"] == sum(p.numel() for p in built.parameters())
    assert info["flops"] == count_flops(built)
    assert set(info) == set(STRUCTURAL)


def test_density_needs_a_genotype() -> None:
    with pytest.raises(ConfigError, match="genotype"):
        INDICATORS.get("density")(nn.Linear(2, 2), *_batch(1))


# ---- registry and purity -------------------------------------------------------------------


def test_registry_names_directions_and_errors() -> None:
    assert {
        "fsp_dist",
        "jac_norm",
        "robust_acc",
        "density",
        "edge_density",
        "num_params",
        "flops",
    } <= set(INDICATORS.names())
    assert INDICATORS.get("fsp_dist").direction == -1
    assert INDICATORS.get("jac_norm").direction == -1
    assert INDICATORS.get("density").direction == 1
    with pytest.raises(UnknownName, match="fsp_dist"):
        INDICATORS.get("nope")
    with pytest.raises(ConfigError, match="unknown indicator settings"):
        as_config({"epss": 0.1})
    assert as_config({"eps": 0.5}).eps == 0.5
    with pytest.raises(ConfigError):
        IndicatorConfig(jac_method="magic")


@pytest.mark.parametrize("name", INDICATORS.names())
def test_every_indicator_is_pure(name: str) -> None:
    net = _tiny_net()
    net.train()
    net.cells[1].eval()  # a mixed state must come back exactly
    net.stem[0].weight.requires_grad_(False)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    modes = [m.training for m in net.modules()]
    flags = [p.requires_grad for p in net.parameters()]
    x, y = _batch(4)  # zico splits the batch in two
    x_before = x.clone()
    cfg = IndicatorConfig(attack_steps=1, eval_attack="fgsm")
    first = INDICATORS.get(name)(net, x, y, cfg=cfg)
    assert first and all(math.isfinite(v) for v in first.values())
    assert INDICATORS.get(name)(net, x, y, cfg=cfg) == first  # no hidden state, seeded
    assert torch.equal(x, x_before) and not x.requires_grad
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    assert [m.training for m in net.modules()] == modes
    assert [p.requires_grad for p in net.parameters()] == flags
    assert all(p.grad is None for p in net.parameters())


@pytest.mark.parametrize("space_name", ["darts", "nb201"])
def test_genotype_flops_table_matches_counting_the_built_network(space_name: str) -> None:
    space = get_space(space_name)
    macro = space.resolve_macro("tiny")
    rng = np.random.default_rng(0)
    for g in (space.sample(rng), space.sample(rng, free=True, macro=macro)):
        with torch.device("meta"):
            built = models.build(space, g, macro)
        assert genotype_structure(space, g, macro)["flops"] == count_flops(built)


def test_fsp_on_nb201_cells_uses_each_cells_own_input() -> None:
    nb201 = get_space("nb201")
    net = models.build(nb201, nb201.sample(np.random.default_rng(0)), nb201.resolve_macro("tiny"))
    x, y = _batch(2)
    shapes = [tuple(g.shape) for g in fsp_matrices(net, x)]
    assert shapes == [(2, 8, 8), (2, 16, 16), (2, 32, 32)]  # N=1: one cell per stage
    out = fsp_dist(net, x, y, cfg=IndicatorConfig(attack_steps=1))
    assert set(out) == {"fsp_dist", "fsp_dist_cell0", "fsp_dist_cell1", "fsp_dist_cell2"}
