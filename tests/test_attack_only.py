"""`attack(..., only=mask)`: PGD attacks only the masked rows, and those rows come out as a call
on the whole batch makes them; robust accuracy is unchanged by skipping the clean misses."""

from __future__ import annotations

import pytest
import torch
from attack_helpers import tiny_cnn
from torch import nn

from robnas.attacks import PGD, make_attack
from robnas.indicators.robust import _correct, robust_accuracy
from robnas.models.samplers import UniformOpSampler
from robnas.models.supernet import Supernet
from robnas.space.search_space import get_space
from robnas.training.validate import robust_counts


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = tiny_cnn(width=8)
    with torch.no_grad():  # BatchNorm statistics that are not the identity
        model[2].running_mean.uniform_(-0.2, 0.2)
        model[2].running_var.uniform_(0.5, 2.0)
    return model.eval()


def _batch(n: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.rand(n, 3, 32, 32, generator=gen), torch.randint(0, 10, (n,), generator=gen)


@pytest.mark.parametrize(
    "attack",
    [PGD(8 / 255, steps=5), PGD(8 / 255, steps=3, restarts=3), PGD(0.5, norm="l2", steps=3)],
    ids=["linf", "restarts", "l2"],
)
def test_pgd_only_rows_equal_the_whole_batch_attack(attack: PGD) -> None:
    model = _model()
    x, y = _batch()
    only = torch.zeros(len(y), dtype=torch.bool)
    only[[0, 3, 4, 10, 17, 23]] = True
    g_all, g_only = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    full = attack(model, x, y, generator=g_all)
    part = attack(model, x, y, generator=g_only, only=only)
    torch.testing.assert_close(part[only], full[only], rtol=0, atol=1e-6)
    # the same numbers were drawn: the next batch's random start is the same too
    assert torch.equal(torch.rand(4, generator=g_all), torch.rand(4, generator=g_only))
    # rows outside the mask are inside the ball and [0, 1], but not attacked
    assert (part - x).abs().amax() <= attack.bound() + 1e-6 or attack.norm == "l2"
    assert part.min() >= 0 and part.max() <= 1


def test_pgd_only_does_no_work_outside_the_mask() -> None:
    model = _model()
    x, y = _batch(16)
    seen: list[int] = []
    hook = model.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[0]))
    only = torch.zeros(16, dtype=torch.bool)
    only[:5] = True
    PGD(8 / 255, steps=4)(model, x, y, only=only)
    assert seen == [5] * 4
    seen.clear()
    PGD(8 / 255, steps=4)(model, x, y, only=torch.zeros(16, dtype=torch.bool))
    assert seen == []
    hook.remove()


def test_only_in_train_mode_attacks_the_whole_batch() -> None:
    # BatchNorm on batch statistics couples the rows: a subset would change every row's result
    model = _model()
    x, y = _batch(8)
    only = torch.tensor([True, False] * 4)
    attack = PGD(8 / 255, steps=2, eval_mode=False)
    model.train()
    full = attack(model, x, y, generator=torch.Generator().manual_seed(0))
    part = attack(model, x, y, generator=torch.Generator().manual_seed(0), only=only)
    assert torch.equal(full, part)


def test_only_must_be_a_bool_mask_per_image() -> None:
    model = _model()
    x, y = _batch(4)
    with pytest.raises(ValueError, match="bool mask"):
        PGD(8 / 255, steps=1)(model, x, y, only=torch.ones(4, dtype=torch.long))
    with pytest.raises(ValueError, match="bool mask"):
        PGD(8 / 255, steps=1)(model, x, y, only=torch.ones(3, dtype=torch.bool))


def _reference(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int, seed: int
) -> tuple[float, float]:
    """robust_accuracy as it was: every image attacked."""
    attack = make_attack("pgd20", eps=8 / 255, steps=5, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    clean = robust = 0
    for s in range(0, len(labels), batch_size):
        x, y = images[s : s + batch_size], labels[s : s + batch_size]
        ok = _correct(model, x, y)
        adv = attack(model, x, y, generator=gen)
        clean += int(ok.sum())
        robust += int((ok & _correct(model, adv, y)).sum())
    return clean / len(labels), robust / len(labels)


def test_robust_accuracy_is_unchanged_on_a_darts_candidate() -> None:
    """The candidate protocol's measurement on an inherited darts path: the same clean and
    robust accuracy as attacking every image (labels half the model's own predictions, so
    about half the images are clean hits and the robust count is not trivially zero)."""
    space = get_space("darts")
    torch.manual_seed(0)
    supernet = Supernet(space, space.resolve_macro("tiny"))
    model = supernet.extract(UniformOpSampler(space, 3).sample()).eval()
    x, y = _batch(40)
    with torch.no_grad():
        pred = model(x).argmax(1)
    y = torch.where(torch.arange(40) % 2 == 0, pred, y)
    attack = make_attack("pgd20", eps=8 / 255, steps=5, seed=7)
    got = robust_accuracy(
        model, x, y, attack, batch_size=16, generator=torch.Generator().manual_seed(7)
    )
    assert got == _reference(model, x, y, 16, 7)
    assert 0 < got[1] <= got[0] < 1


def test_robust_counts_skip_the_clean_misses_without_changing_the_counts() -> None:
    from robnas.data.datasets import ImageData

    model = _model()
    x, y = _batch(30)
    with torch.no_grad():
        pred = model(x).argmax(1)
    y = torch.where(torch.arange(30) % 3 == 0, pred, y)
    data = ImageData((x * 255).round().to(torch.uint8), y, tuple(str(i) for i in range(10)))
    attack = PGD(8 / 255, alpha=2 / 255, steps=4, seed=3)
    counts = robust_counts(model, data, attack, batch_size=16)
    images = data.floats()
    ref_attack = PGD(8 / 255, alpha=2 / 255, steps=4, seed=3)
    gen = torch.Generator().manual_seed(3)
    clean = robust = 0
    for s in range(0, 30, 16):
        xb, yb = images[s : s + 16], y[s : s + 16]
        ok = _correct(model, xb, yb)
        adv = ref_attack(model, xb, yb, generator=gen)
        clean += int(ok.sum())
        robust += int((ok & _correct(model, adv, yb)).sum())
    assert counts.tolist() == [clean, robust, 30]
