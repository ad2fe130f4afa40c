"""The input-Hessian indicator against an explicit Hessian on a tiny smooth model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from robnas.indicators import INDICATORS
from robnas.indicators.hessian import top_eigenvalues


def _tiny_model(seed: int, act: nn.Module) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 16), act, nn.Linear(16, 5)).double()


def _explicit_top_eig(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Largest-magnitude eigenvalue of each example's full input Hessian, by eigvalsh."""
    out = []
    for i in range(x.shape[0]):

        def loss(xi: torch.Tensor, i: int = i) -> torch.Tensor:
            return nn.functional.cross_entropy(
                model(xi.unsqueeze(0)), y[i : i + 1], reduction="sum"
            )

        h = torch.autograd.functional.hessian(loss, x[i]).reshape(x[i].numel(), -1)
        ev = torch.linalg.eigvalsh(h)
        out.append(ev[ev.abs().argmax()])
    return torch.stack(out)


@pytest.mark.parametrize("act", [nn.Tanh(), nn.ReLU()], ids=["tanh", "relu"])
def test_power_iteration_matches_explicit_hessian(act: nn.Module) -> None:
    model = _tiny_model(0, act)
    gen = torch.Generator().manual_seed(1)
    x = torch.rand(6, 3, 2, 2, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 5, (6,), generator=gen)
    want = _explicit_top_eig(model, x, y)
    got = top_eigenvalues(model, x, y, iterations=500, tol=1e-12, generator=gen)
    assert want.abs().min() > 1e-6  # the test is not comparing zeros
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-9)


def test_indicator_is_registered_lower_is_better_and_restores_the_model() -> None:
    ind = INDICATORS.get("hessian_eig")
    assert ind.direction == -1
    # ReLU nets (every cell space here) have a positive semi-definite input Hessian of the loss
    model = _tiny_model(0, nn.ReLU()).float().train()
    before = [p.detach().clone() for p in model.parameters()]
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(8, 3, 2, 2, generator=gen)
    y = torch.randint(0, 5, (8,), generator=gen)
    value = ind(model, x, y, cfg={"hessian_iterations": 50})["hessian_eig"]
    assert value > 0
    assert model.training and all(p.requires_grad for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    # scaling the logits by 3 sharpens the loss surface: the indicator must see it
    sharp = _tiny_model(0, nn.ReLU()).float()
    with torch.no_grad():
        sharp[3].weight.mul_(3)
        sharp[3].bias.mul_(3)
    assert ind(sharp, x, y, cfg={"hessian_iterations": 50})["hessian_eig"] > value


def test_input_free_model_gives_zero() -> None:
    class Constant(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bias = nn.Parameter(torch.randn(5))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.bias.expand(x.shape[0], 5)

    x = torch.rand(4, 3, 2, 2)
    y = torch.zeros(4, dtype=torch.long)
    assert INDICATORS.get("hessian_eig")(Constant(), x, y)["hessian_eig"] == 0.0


def test_hessian_prescreens_a_supernet_search_through_the_indicator_evaluator() -> None:
    from robnas.data.datasets import ImageData
    from robnas.evaluators.base import Scoring
    from robnas.evaluators.indicator import IndicatorEvaluator
    from robnas.models.supernet import Supernet
    from robnas.search.settings import SUPERNET_PRESCREENS
    from robnas.space.search_space import get_space

    assert "hessian_eig" in SUPERNET_PRESCREENS
    space = get_space("nb201")
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (8, 3, 32, 32), generator=gen, dtype=torch.uint8)
    data = ImageData(images, torch.arange(8) % 10, tuple(str(i) for i in range(10)))
    torch.manual_seed(0)
    supernet = Supernet(space, {"C": 4, "N": 1})
    scoring = Scoring(attack=None, indicators=("hessian_eig",), indicator_samples=8)
    evaluator = IndicatorEvaluator(space, None, data, scoring, supernet=supernet)
    conv = space.parse(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    empty = space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    assert evaluator.evaluate(conv).metrics["hessian_eig"] > 0
    assert (
        evaluator.evaluate(empty).metrics["hessian_eig"] == 0.0
    )  # the output never sees the input
