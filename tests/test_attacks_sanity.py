"""Sanity on a small CNN trained for seconds on CIFAR-10, and cross-checks against independent
implementations (foolbox, the official AutoAttack).

Stated tolerances: FGSM and PGD without random start match foolbox within 1 example of 200
(same algorithm, float rounding only); L2 DeepFool within 2 points; our PGD-100 with two restarts
lands within 4 points of the official APGD-CE (different algorithms, same threat model).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from attack_helpers import accuracy, trained_cnn
from torch import nn

from robnas.attacks import APGDCE, CW, FGSM, PGD, DeepFool

EPS = 8 / 255
ONE = 1 / 200 + 1e-9  # one example of 200


@pytest.fixture(scope="module")
def trained(data_root: Path) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    return trained_cnn(data_root)


def attacked_acc(attack: object, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return accuracy(model, attack(model, x, y), y)  # type: ignore[operator]


def test_model_learned_something(trained: tuple[nn.Module, torch.Tensor, torch.Tensor]) -> None:
    model, x, y = trained
    assert accuracy(model, x, y) > 0.3


def test_eps_zero_gives_clean_accuracy(
    trained: tuple[nn.Module, torch.Tensor, torch.Tensor],
) -> None:
    model, x, y = trained
    clean = accuracy(model, x, y)
    assert attacked_acc(PGD(eps=0.0, alpha=0.0, steps=3), model, x, y) == clean
    assert attacked_acc(FGSM(eps=0.0), model, x, y) == clean


def test_accuracy_does_not_rise_with_eps_or_steps(
    trained: tuple[nn.Module, torch.Tensor, torch.Tensor],
) -> None:
    model, x, y = trained
    accs = [
        attacked_acc(PGD(eps=e / 255, steps=10, random_start=False), model, x, y)
        for e in (0, 1, 2, 4, 8)
    ]
    assert all(b <= a + ONE for a, b in zip(accs, accs[1:])), accs
    assert accs[-1] < accs[0] - 0.1, accs
    by_steps = [attacked_acc(PGD(eps=2 / 255, steps=s), model, x, y) for s in (2, 10, 40)]
    assert all(b <= a + 2 * ONE for a, b in zip(by_steps, by_steps[1:])), by_steps


def test_unbounded_attacks_reach_zero(
    trained: tuple[nn.Module, torch.Tensor, torch.Tensor],
) -> None:
    model, x, y = trained
    assert attacked_acc(PGD(eps=1.0, alpha=0.1, steps=20), model, x, y) <= ONE
    # DeepFool's overshoot acts on the total perturbation, so points really cross the boundary.
    for norm in ("l2", "linf"):
        assert attacked_acc(DeepFool(norm=norm), model, x, y) <= ONE, norm
    sub_x, sub_y = x[:24], y[:24]
    cw_adv = CW(steps=50, binary_search_steps=3)(model, sub_x, sub_y)
    assert accuracy(model, cw_adv, sub_y) == 0
    # C&W finds smaller perturbations than DeepFool on most examples.
    df_adv = DeepFool(norm="l2")(model, sub_x, sub_y)
    correct = model(sub_x).argmax(1) == sub_y
    cw_l2 = (cw_adv - sub_x).flatten(1).norm(dim=1)[correct]
    df_l2 = (df_adv - sub_x).flatten(1).norm(dim=1)[correct]
    assert (cw_l2 < df_l2).float().mean() >= 2 / 3, (cw_l2, df_l2)


def test_bounded_minimal_norm_attacks_respect_eps(
    trained: tuple[nn.Module, torch.Tensor, torch.Tensor],
) -> None:
    model, x, y = trained
    unbounded = attacked_acc(DeepFool(norm="l2"), model, x, y)
    bounded = attacked_acc(DeepFool(eps=0.1, norm="l2"), model, x, y)
    assert unbounded < bounded <= accuracy(model, x, y)


# ---- cross-checks ------------------------------------------------------------------------------


def _foolbox_acc(
    attack: object, model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float
) -> float:
    fb = pytest.importorskip("foolbox")
    fmodel = fb.PyTorchModel(model.eval(), bounds=(0, 1))
    _, clipped, success = attack(fmodel, x, y, epsilons=eps)  # type: ignore[operator]
    return accuracy(model, clipped, y)


def test_fgsm_and_pgd_match_foolbox(
    trained: tuple[nn.Module, torch.Tensor, torch.Tensor],
) -> None:
    fb = pytest.importorskip("foolbox")
    model, x, y = trained
    ours = attacked_acc(FGSM(eps=EPS), model, x, y)
    theirs = _foolbox_acc(fb.attacks.FGSM(), model, x, y, EPS)
    assert abs(ours - theirs) <= ONE, (ours, theirs)
    eps = 2 / 255
    ours = attacked_acc(PGD(eps=eps, alpha=eps / 4, steps=10, random_start=False), model, x, y)
    pgd = fb.attacks.LinfPGD(abs_stepsize=eps / 4, steps=10, random_start=False)
    theirs = _foolbox_acc(pgd, model, x, y, eps)
    assert abs(ours - theirs) <= ONE, (ours, theirs)


def test_l2_deepfool_matches_foolbox(
    trained: tuple[nn.Module, torch.Tensor, torch.Tensor],
) -> None:
    fb = pytest.importorskip("foolbox")
    model, x, y = trained
    eps = 0.15
    ours = attacked_acc(DeepFool(eps=eps, norm="l2", steps=50, overshoot=0.02), model, x, y)
    df = fb.attacks.L2DeepFoolAttack(steps=50, candidates=10, overshoot=0.02)
    theirs = _foolbox_acc(df, model, x, y, eps)
    assert abs(ours - theirs) <= 0.02, (ours, theirs)


def test_apgd_matches_official_autoattack(
    trained: tuple[nn.Module, torch.Tensor, torch.Tensor],
) -> None:
    from pyautoattack import AutoAttack

    model, x, y = trained
    x, y = x[:100], y[:100]
    eps = 2 / 255
    official = AutoAttack(model, eps=eps, version="custom", attacks=["apgd-ce"], seed=0)
    official.apgd.n_iter = 100
    with torch.random.fork_rng():
        adv, _ = official.run_standard_evaluation(x, y, batch_size=100)
    theirs = accuracy(model, adv, y)
    ours_apgd = attacked_acc(APGDCE(eps=eps, n_iter=100), model, x, y)
    assert abs(ours_apgd - theirs) <= 0.01, (ours_apgd, theirs)
    ours_pgd = attacked_acc(PGD(eps=eps, steps=100, restarts=2), model, x, y)
    assert abs(ours_pgd - theirs) <= 0.04, (ours_pgd, theirs)
