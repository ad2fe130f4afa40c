"""Attack properties on a small CNN trained for seconds on CIFAR-10, and exact cross-checks against
independent implementations (foolbox; the official AutoAttack, which our APGD/Square/AA wrap).

Nothing here depends on the thread count. Cross-checks run one algorithm twice on the same input:
in float64 (foolbox) two implementations agree to ~1e-13, so the adversarial examples must match
to 1e-9 (one differing decision would move a pixel by a whole step, >= 1e-3); the AutoAttack
wrappers call the official code with the same seed in the same process, so they must match up to
the float32 rounding of our final projection into the ball (~1e-9; a differing seed or setting
moves pixels by a whole step, ~1e-2). Properties of attack strength compare per-example outcomes with the paired sign test
of `attack_helpers.not_weaker`, whose tolerance follows from the number of discordant examples.
The trained model is trained on one thread, so it is the same model on every thread count.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from attack_helpers import accuracy, float64_probe, fooled, not_weaker, trained_cnn
from torch import nn

from robnas.attacks import APGDCE, CW, FGSM, PGD, AutoAttack, DeepFool, Square

EPS = 8 / 255
ONE = 1 / 200 + 1e-9  # one example of 200

Trained = tuple[nn.Module, torch.Tensor, torch.Tensor]


@pytest.fixture(scope="module")
def trained(data_root: Path) -> Trained:
    return trained_cnn(data_root)


def attacked_acc(attack: object, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return accuracy(model, attack(model, x, y), y)  # type: ignore[operator]


def test_model_learned_something(trained: Trained) -> None:
    model, x, y = trained
    assert accuracy(model, x, y) > 0.3


def test_eps_zero_gives_clean_accuracy(trained: Trained) -> None:
    model, x, y = trained
    clean = accuracy(model, x, y)
    assert attacked_acc(PGD(eps=0.0, alpha=0.0, steps=3), model, x, y) == clean
    assert attacked_acc(FGSM(eps=0.0), model, x, y) == clean


def test_accuracy_falls_as_eps_grows(trained: Trained) -> None:
    model, x, y = trained
    sets = [
        fooled(model, PGD(eps=e / 255, steps=10, random_start=False)(model, x, y), y)
        for e in (0, 1, 2, 4, 8)
    ]
    for weak, strong in zip(sets, sets[1:]):
        ok, detail = not_weaker(strong, weak)
        assert ok, detail
    # And it really falls: 8/255 fools far more than the clean errors (0.42 -> 0.005 measured).
    ok, _ = not_weaker(sets[0], sets[-1])
    assert not ok


def test_more_steps_never_help_the_model(trained: Trained) -> None:
    model, x, y = trained
    sets = [fooled(model, PGD(eps=2 / 255, steps=s)(model, x, y), y) for s in (1, 10, 40)]
    for weak, strong in zip(sets, sets[1:]):
        ok, detail = not_weaker(strong, weak)
        assert ok, detail
    ok, _ = not_weaker(sets[0], sets[1])  # 10 steps fool significantly more than 1
    assert not ok


def test_attack_beats_random_noise_of_the_same_norm(trained: Trained) -> None:
    model, x, y = trained
    eps = 4 / 255
    gen = torch.Generator().manual_seed(0)
    signs = torch.randint(0, 2, x.shape, generator=gen).float() * 2 - 1
    noise = fooled(model, (x + eps * signs).clamp(0, 1), y)
    pgd = fooled(model, PGD(eps=eps, steps=10)(model, x, y), y)
    ok, detail = not_weaker(noise, pgd)  # noise "as strong as PGD" must be rejected
    assert not ok, detail


def test_unbounded_attacks_reach_zero(trained: Trained) -> None:
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


def test_bounded_minimal_norm_attacks_respect_eps(trained: Trained) -> None:
    model, x, y = trained
    unbounded = attacked_acc(DeepFool(norm="l2"), model, x, y)
    bounded = attacked_acc(DeepFool(eps=0.1, norm="l2"), model, x, y)
    assert unbounded < bounded <= accuracy(model, x, y)


# ---- exact cross-checks with foolbox (float64) -------------------------------------------------


def _same_as_foolbox(ours: object, theirs: object, eps: float | None) -> None:
    fb = pytest.importorskip("foolbox")
    model, x, y = float64_probe()
    adv = ours(model, x, y)  # type: ignore[operator]
    _, reference, _ = theirs(fb.PyTorchModel(model, bounds=(0, 1)), x, y, epsilons=eps)  # type: ignore[operator]
    assert adv.dtype == torch.float64
    assert (
        adv - x
    ).abs().amax() > 1e-3  # the attack moved the images, so the check means something
    assert (adv - reference).abs().amax() <= 1e-9


def test_fgsm_and_linf_pgd_equal_foolbox() -> None:
    fb = pytest.importorskip("foolbox")
    _same_as_foolbox(FGSM(eps=EPS, fp32=False), fb.attacks.FGSM(), EPS)
    eps = 2 / 255
    ours = PGD(eps=eps, alpha=eps / 4, steps=10, random_start=False, fp32=False)
    theirs = fb.attacks.LinfPGD(abs_stepsize=eps / 4, steps=10, random_start=False)
    _same_as_foolbox(ours, theirs, eps)


def test_l2_pgd_equals_foolbox() -> None:
    fb = pytest.importorskip("foolbox")
    ours = PGD(eps=0.3, alpha=0.075, steps=10, norm="l2", random_start=False, fp32=False)
    theirs = fb.attacks.L2PGD(abs_stepsize=0.075, steps=10, random_start=False)
    _same_as_foolbox(ours, theirs, 0.3)


@pytest.mark.parametrize(("norm", "eps"), [("l2", None), ("l2", 0.15), ("linf", 2 / 255)])
def test_deepfool_equals_foolbox(norm: str, eps: float | None) -> None:
    fb = pytest.importorskip("foolbox")
    ours = DeepFool(eps=eps, norm=norm, steps=50, overshoot=0.02, candidates=10, fp32=False)
    cls = fb.attacks.L2DeepFoolAttack if norm == "l2" else fb.attacks.LinfDeepFoolAttack
    _same_as_foolbox(ours, cls(steps=50, candidates=10, overshoot=0.02), eps)


# ---- the AutoAttack wrappers pass their settings to the official code exactly --------------------


def _float32_probe() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    model, x, _ = float64_probe(n=6)
    model, x = model.float(), x.float()
    with torch.no_grad():
        return model, x, model(x).argmax(1)


def _seed_of(ours_seed: int) -> int:
    # What the wrappers hand pyautoattack: the first draw of the call's seeded generator.
    gen = torch.Generator().manual_seed(ours_seed)
    return int(torch.randint(0, 2**31 - 1, (1,), generator=gen))


def test_apgd_ce_equals_official_apgd() -> None:
    from pyautoattack.autopgd_base import APGDAttack

    model, x, y = _float32_probe()
    eps = 4 / 255
    ours = APGDCE(eps=eps, n_iter=10, seed=3)(model, x, y)
    official = APGDAttack(
        model, n_iter=10, norm="Linf", n_restarts=1, eps=eps, seed=_seed_of(3), loss="ce", rho=0.75
    )
    with torch.random.fork_rng():
        theirs = official.perturb(x, y)
    assert (ours - x).abs().amax() > 1e-3
    assert (ours - theirs).abs().amax() <= 1e-6


def test_square_equals_official_square() -> None:
    from pyautoattack.square import SquareAttack

    model, x, y = _float32_probe()
    eps = 8 / 255
    ours = Square(eps=eps, n_queries=30, seed=2)(model, x, y)
    official = SquareAttack(
        model, p_init=0.8, n_queries=30, eps=eps, norm="Linf", n_restarts=1, seed=_seed_of(2)
    )
    with torch.random.fork_rng(), torch.no_grad():
        theirs = official.perturb(x, y)
    assert (ours - theirs).abs().amax() <= 1e-6


def test_autoattack_equals_official_standard_version() -> None:
    from pyautoattack import AutoAttack as Official

    model, x, y = _float32_probe()
    eps = 8 / 255
    ours = AutoAttack(eps=eps, n_iter=3, n_queries=10, seed=1)(model, x, y)
    official = Official(model, eps=eps, norm="Linf", seed=_seed_of(1), version="standard")
    official.verbose = False
    for sub in (official.apgd, official.apgd_targeted, official.fab):
        sub.n_iter = 3
        if hasattr(sub, "n_iter_orig"):
            sub.n_iter_orig, sub.n_iter_2, sub.n_iter_min, sub.size_decr = 3, 1, 1, 1
    official.square.n_queries = 10
    with torch.random.fork_rng():
        theirs, _ = official.run_standard_evaluation(x, y, batch_size=len(x))
    assert (ours - x).abs().amax() > 1e-3
    assert (ours - theirs).abs().amax() <= 1e-6
