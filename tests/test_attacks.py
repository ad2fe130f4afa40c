"""Properties every registered attack must have, on a tiny untrained CNN (fast)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import torch
from attack_helpers import float64_probe, tiny_cnn
from torch import nn

from robnas.attacks import ATTACKS, FGSM, PGD, Attack, make_attack, margin, parse_eps, project
from robnas.errors import ConfigError, UnknownName

EPS = 8 / 255
EPS_L2 = 0.5
# Short versions: these tests are about the contract, not strength.
SHORT: dict[str, dict[str, Any]] = {
    "aa": {"n_iter": 3, "n_queries": 10},
    "apgd_ce": {"n_iter": 5},
    "square": {"n_queries": 20},
    "cw": {"steps": 8, "binary_search_steps": 2},
    "pgd100": {"steps": 5},
    "deepfool": {"steps": 5},
    "deepfool_linf": {"steps": 5},
}


def build(name: str, seed: int = 0) -> Attack:
    return make_attack(name, eps=EPS, eps_l2=EPS_L2, seed=seed, **SHORT.get(name, {}))


@pytest.fixture(scope="module")
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.rand(8, 3, 32, 32, generator=gen), torch.randint(0, 10, (8,), generator=gen)


def test_registry_has_the_paper_attacks() -> None:
    expected = {"fgsm", "pgd", "pgd20", "pgd100", "pgd_l2", "mifgsm", "deepfool", "deepfool_linf"}
    assert expected | {"cw", "apgd_ce", "square", "aa"} <= set(ATTACKS.names())
    with pytest.raises(UnknownName, match="known: aa"):
        make_attack("nope")


def assert_attack_contract(make: Callable[[], Attack], images: torch.Tensor) -> None:
    """What every attack must do on a tiny untrained CNN, whose own predictions are the labels
    (every example starts correctly classified): return inputs of the right shape and type, fool
    at least one example, leave the model as it was (modes, weights, buffers, grads), and repeat
    itself for a seed. Raises AssertionError naming the broken promise."""
    model = tiny_cnn()
    with torch.no_grad():
        labels = model.eval()(images).argmax(1)
    model.train()
    model[1].weight.grad = torch.ones_like(model[1].weight)  # a stale .grad must survive
    model[2].eval()  # mixed modes must survive too
    before = copy.deepcopy(model.state_dict())
    grads = {k: None if p.grad is None else p.grad.clone() for k, p in model.named_parameters()}
    modes = [m.training for m in model.modules()]
    adv = make()(model, images, labels)
    # (The eps-ball and [0, 1] hold by construction: Attack.__call__ ends with project().)
    assert adv.shape == images.shape and adv.dtype == torch.float32
    # An attack attacks: it moves inputs, and some moved input is misclassified.
    assert not torch.equal(adv, images), "the attack changed no input"
    with torch.no_grad():
        fooled = copy.deepcopy(model).eval()(adv).argmax(1) != labels
    assert fooled.any(), "the attack fooled no example of an untrained CNN"
    # Model untouched: modes, parameters, buffers (BN statistics), grads, requires_grad.
    assert [m.training for m in model.modules()] == modes
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    for key, p in model.named_parameters():
        assert p.requires_grad
        assert (p.grad is None) == (grads[key] is None) and (
            p.grad is None or torch.equal(p.grad, grads[key])
        ), key
    # Deterministic for a seed.
    assert torch.equal(make()(model, images, labels), adv)


@pytest.mark.parametrize("name", ATTACKS.names())
def test_attack_contract(name: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    assert_attack_contract(lambda: build(name), batch[0])


class Unchanged(Attack):
    """Returns its inputs: what the contract must reject."""

    name = "unchanged"

    def perturb(self, model, images, labels, generator):  # type: ignore[no-untyped-def]
        return images.clone()


class Noise(Attack):
    """Random sign noise at a tiny eps: changes inputs but fools nothing."""

    name = "noise"

    def perturb(self, model, images, labels, generator):  # type: ignore[no-untyped-def]
        noise = torch.randint(0, 2, images.shape, generator=generator) * 2 - 1
        return images + noise * self.bound()


def test_the_contract_rejects_an_attack_that_attacks_nothing(
    batch: tuple[torch.Tensor, torch.Tensor],
) -> None:
    with pytest.raises(AssertionError, match="changed no input"):
        assert_attack_contract(lambda: Unchanged(eps=EPS), batch[0])
    with pytest.raises(AssertionError, match="fooled no example"):
        assert_attack_contract(lambda: Noise(eps=1e-6), batch[0])


@pytest.mark.parametrize("name", ["pgd", "pgd_l2"])
def test_seed_and_generator_change_random_attacks(
    name: str, batch: tuple[torch.Tensor, torch.Tensor]
) -> None:
    images, labels = batch
    model = tiny_cnn().eval()
    a = build(name, seed=0)(model, images, labels)
    b = build(name, seed=1)(model, images, labels)
    assert not torch.equal(a, b)
    gen = torch.Generator().manual_seed(5)
    c = build(name, seed=0)(model, images, labels, generator=gen)
    d = build(name, seed=0)(model, images, labels, generator=gen)  # the stream moved on
    assert not torch.equal(c, d)


def test_global_rng_untouched_by_pyautoattack(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    images, labels = batch
    model = tiny_cnn().eval()
    state = torch.random.get_rng_state()
    build("apgd_ce")(model, images, labels)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_no_weight_gradients_are_built(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    images, labels = batch
    model = tiny_cnn().eval()
    seen: list[bool] = []
    hook = model[1].register_forward_hook(lambda m, i, o: seen.append(m.weight.requires_grad))
    PGD(eps=EPS, steps=2)(model, images, labels)
    hook.remove()
    assert seen == [False, False] and model[1].weight.requires_grad


def test_margin_is_right_for_all_negative_logits() -> None:
    logits = torch.tensor([[-5.0, -1.0, -3.0], [-2.0, -4.0, -9.0]])
    labels = torch.tensor([1, 0])
    # Competitor of row 0 is -3 (not 0 from a one-hot mask): margin -3 - (-1) = -2.
    assert torch.allclose(margin(logits, labels), torch.tensor([-2.0, -2.0]))


def test_project_l2_and_linf() -> None:
    x = torch.full((2, 1, 2, 2), 0.5)
    adv = x + torch.tensor([1.0, 0.01]).reshape(2, 1, 1, 1)
    p = project(adv, x, 0.2, "l2")
    assert torch.allclose((p - x).flatten(1).norm(dim=1), torch.tensor([0.2, 0.02]))
    q = project(adv, x, 0.005, "linf")
    assert torch.allclose((q - x).abs().amax(dim=(1, 2, 3)), torch.tensor([0.005, 0.005]))


def test_attack_rejects_bad_input(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    images, labels = batch
    model = tiny_cnn()
    with pytest.raises(ValueError, match="uint8"):
        PGD()(model, (images * 255).to(torch.uint8), labels)
    with pytest.raises(ValueError, match="labels"):
        PGD()(model, images, labels[:3])
    with pytest.raises(ValueError):
        PGD(eps=-0.1)
    with pytest.raises(ValueError):
        PGD(loss="hinge")


def test_autocast_is_disabled_for_evaluation(batch: tuple[torch.Tensor, torch.Tensor]) -> None:
    images, labels = batch
    dtypes: list[torch.dtype] = []

    class Probe(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            dtypes.append(x.dtype)
            return x

    model = nn.Sequential(Probe(), tiny_cnn())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        adv = PGD(steps=1)(model, images.bfloat16(), labels)
    assert adv.dtype == torch.float32 and set(dtypes) == {torch.float32}


@pytest.mark.parametrize(
    ("text", "value"), [("8/255", 8 / 255), ("0.03", 0.03), (" 2 / 255 ", 2 / 255), ("1", 1.0)]
)
def test_parse_eps(text: str, value: float) -> None:
    assert parse_eps(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["0", "2", "-0.1", "8/0", "abc", "nan", "300/255"])
def test_parse_eps_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_eps(text)


def test_parse_eps_takes_zero_only_when_allowed() -> None:
    # 0 means "no attack" where a caller allows it (robnas rank --fgsm-eps 0)
    assert parse_eps("0", allow_zero=True) == 0.0 and parse_eps("0/255", allow_zero=True) == 0.0
    assert parse_eps("8/255", allow_zero=True) == pytest.approx(8 / 255)
    for bad in ("2", "-0.1", "nan"):
        with pytest.raises(ConfigError):
            parse_eps(bad, allow_zero=True)


@pytest.mark.parametrize("name", ["fgsm", "pgd20", "mifgsm", "deepfool", "deepfool_linf"])
def test_a_path_that_ignores_its_input_gets_zero_gradient(name: str) -> None:
    # An NB201 cell whose output node has no active edge: the logits do not depend on the input.
    # The gradient is exactly zero, so no step moves a pixel (sign(0) = 0; a zero DeepFool
    # direction scales to zero, not NaN): the result is the input, or PGD's random start.
    from robnas.attacks.base import random_in_ball
    from robnas.models.resolve import build as build_arch

    model = build_arch(
        "nb201:|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", size="tiny"
    ).eval()
    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = torch.arange(4)
    adv = build(name)(model, x, y)
    assert torch.isfinite(adv).all()
    if name == "pgd20":
        start = random_in_ball(x, EPS, "linf", torch.Generator().manual_seed(0))
        assert torch.equal(adv, project(start, x, EPS, "linf"))
        assert (adv - x).abs().amax() > EPS / 2  # the start is really random, not x
    else:
        assert torch.equal(adv, x)


def _ce(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(images), labels))


def test_fgsm_uses_its_whole_budget() -> None:
    model, x, y = float64_probe(n=4)
    x = 0.1 + 0.8 * x  # away from 0 and 1, so no pixel is clipped
    adv = FGSM(eps=EPS, fp32=False)(model, x, y)
    at_eps = ((adv - x).abs() - EPS).abs() <= 1e-12
    # Every pixel whose gradient is not exactly zero moves by exactly eps (measured: all of them).
    assert at_eps.double().mean() >= 0.99
    assert _ce(model, adv, y) > _ce(model, x, y)


@pytest.mark.parametrize(("norm", "eps"), [("linf", 2 / 255), ("l2", 0.3)])
def test_pgd_loss_increases_over_steps(norm: str, eps: float) -> None:
    model, x, y = float64_probe(n=8)
    losses = [
        _ce(model, PGD(eps=eps, norm=norm, steps=s, random_start=False, fp32=False)(model, x, y), y)
        for s in (1, 3, 10)
    ]
    assert _ce(model, x, y) < losses[0] < losses[1] < losses[2], losses
    final = PGD(eps=eps, norm=norm, steps=10, random_start=False, fp32=False)(model, x, y)
    if norm == "l2":  # ascent runs to the edge of the ball
        assert ((final - x).flatten(1).norm(dim=1) >= 0.9 * eps).all()


@pytest.mark.parametrize("mode", ["eval", "train", "keep"])
def test_frozen_model_runs_in_its_mode_and_restores_everything(mode: str) -> None:
    from robnas.attacks.base import frozen_model

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.BatchNorm2d(4))
    model.train()
    model[3].eval()  # mixed modes: "keep" must keep them
    before_modes = [m.training for m in model.modules()]
    before_state = copy.deepcopy(model.state_dict())
    with frozen_model(model, mode=mode):
        seen = [m.training for m in model.modules()]
        assert not any(p.requires_grad for p in model.parameters())
        model(torch.rand(8, 3, 6, 6))  # in train mode this moves the running statistics
    expected = {"eval": [False] * 5, "train": [True] * 5, "keep": before_modes}[mode]
    assert seen == expected
    assert [m.training for m in model.modules()] == before_modes
    assert all(p.requires_grad for p in model.parameters())
    for key, value in model.state_dict().items():
        assert torch.equal(value, before_state[key]), key
    with pytest.raises(ValueError, match="mode must be one of"), frozen_model(model, mode="x"):
        pass
