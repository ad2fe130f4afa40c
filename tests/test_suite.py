"""The evaluation protocol, SSIM and the gradient-masking checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from attack_helpers import accuracy, tiny_cnn, trained_cnn
from scipy.signal import convolve2d
from torch import nn

from robnas.attacks import FGSM, PGD, DeepFool, Square
from robnas.attacks.checks import (
    black_box_beats_white_box,
    nondeterministic_forward,
    softmax_outputs,
    unbounded_attack,
    zero_gradients,
)
from robnas.attacks.ssim import gaussian_window, ssim
from robnas.attacks.suite import RobustnessSuite

EPS = 4 / 255


@pytest.fixture(scope="module")
def trained(data_root: Path) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    model, x, y = trained_cnn(data_root)
    return model, x[:60], y[:60]


def _reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Independent SSIM with scipy (valid 2-D convolution per channel, same constants)."""
    w = gaussian_window(11, 1.5, torch.device("cpu")).double().numpy()
    vals = []
    for ca, cb in zip(a, b):
        mu_a, mu_b = convolve2d(ca, w, "valid"), convolve2d(cb, w, "valid")
        va = convolve2d(ca * ca, w, "valid") - mu_a**2
        vb = convolve2d(cb * cb, w, "valid") - mu_b**2
        cov = convolve2d(ca * cb, w, "valid") - mu_a * mu_b
        c1, c2 = 0.01**2, 0.03**2
        s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2))
        vals.append(s.mean())
    return float(np.mean(vals))


def test_ssim_matches_reference_and_bounds() -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 32, 32, generator=gen)
    y = (x + 0.1 * torch.randn(x.shape, generator=gen)).clamp(0, 1)
    ours = ssim(x, y)
    for i in range(3):
        assert ours[i].item() == pytest.approx(
            _reference_ssim(x[i].double().numpy(), y[i].double().numpy()), abs=1e-5
        )
    assert torch.allclose(ssim(x, x), torch.ones(3))
    assert torch.allclose(ssim(x, y), ssim(y, x))
    assert (ssim(x, torch.rand(x.shape, generator=gen)) < 0.2).all()


def test_suite_bookkeeping(trained: tuple[nn.Module, torch.Tensor, torch.Tensor]) -> None:
    model, x, y = trained
    attacks = {"fgsm": FGSM(eps=EPS), "pgd": PGD(eps=EPS, steps=5)}
    report = RobustnessSuite(attacks, batch_size=25, run_checks=False).run(model, x, y)
    rows = {r["attack"]: r for r in report.rows}
    clean = accuracy(model, x, y)
    assert rows["clean"]["robust_acc"] == pytest.approx(clean)
    correct = model(x).argmax(1) == y
    for name, attack in attacks.items():
        # Each attack stands alone on the clean-correct examples (same seed per batch).
        adv = torch.cat([attack(model, x[i : i + 25], y[i : i + 25]) for i in range(0, 60, 25)])
        alone = ((model(adv).argmax(1) == y) & correct).float().mean().item()
        assert rows[name]["robust_acc"] <= clean
        assert rows[name]["attacked"] == int(correct.sum())
        assert rows[name]["success_rate"] == pytest.approx(1 - rows[name]["robust_acc"] / clean)
        assert rows[name]["linf_max"] <= EPS + 1e-6 and rows[name]["noise_rate"] > 0
        assert abs(rows[name]["robust_acc"] - alone) <= 2 / 60  # generators differ per batch
    worst = rows["worst_case"]["robust_acc"]
    assert worst <= min(rows["fgsm"]["robust_acc"], rows["pgd"]["robust_acc"])
    assert report.metrics()["pgd_acc"] == rows["pgd"]["robust_acc"]


def test_cascade_attacks_only_survivors(
    trained: tuple[nn.Module, torch.Tensor, torch.Tensor],
) -> None:
    model, x, y = trained
    attacks = {"fgsm": FGSM(eps=EPS), "pgd": PGD(eps=EPS, steps=5)}
    indep = RobustnessSuite(attacks, batch_size=30, run_checks=False).run(model, x, y)
    casc = RobustnessSuite(attacks, batch_size=30, cascade=True, run_checks=False).run(model, x, y)
    r_ind = {r["attack"]: r for r in indep.rows}
    r_cas = {r["attack"]: r for r in casc.rows}
    assert r_cas["pgd"]["attacked"] == round(r_ind["fgsm"]["robust_acc"] * 60)
    assert r_cas["pgd"]["robust_acc"] == r_cas["worst_case"]["robust_acc"]
    assert r_cas["worst_case"]["robust_acc"] == pytest.approx(r_ind["worst_case"]["robust_acc"])


def test_worst_case_is_per_threat_model(
    trained: tuple[nn.Module, torch.Tensor, torch.Tensor],
) -> None:
    model, x, y = trained
    linf = {"fgsm": FGSM(eps=EPS), "pgd": PGD(eps=EPS, steps=5)}
    # An L2 attack between the two Linf ones must not touch any Linf number.
    mixed = {"fgsm": linf["fgsm"], "pgd_l2": PGD(eps=1.0, norm="l2", steps=5), "pgd": linf["pgd"]}
    for cascade in (False, True):
        alone = RobustnessSuite(linf, batch_size=30, cascade=cascade, run_checks=False)
        both = RobustnessSuite(mixed, batch_size=30, cascade=cascade, run_checks=False)
        r_alone = {(r["attack"], r["norm"]): r for r in alone.run(model, x, y).rows}
        report = both.run(model, x, y)
        r_both = {(r["attack"], r["norm"]): r for r in report.rows}
        worst_rows = [r for r in report.rows if r["attack"] == "worst_case"]
        assert [(r["norm"], r["eps"]) for r in worst_rows] == [("linf", "4/255"), ("l2", "1")]
        for key in [("pgd", "linf"), ("worst_case", "linf")]:
            for column in ("robust_acc", "attacked", "worst_acc"):
                assert r_both[key][column] == r_alone[key][column], (cascade, key, column)
        # The L2 worst case is its only attack's number, not capped by the Linf attacks.
        assert r_both[("worst_case", "l2")]["robust_acc"] == r_both[("pgd_l2", "l2")]["robust_acc"]
        metrics = report.metrics()
        assert metrics["worst_case_linf_4/255_acc"] == r_alone[("worst_case", "linf")]["robust_acc"]
        assert "worst_case_acc" in alone.run(model, x, y).metrics()
    # The two threat models really differ here, so mixing them would have changed the Linf row.
    assert r_both[("pgd_l2", "l2")]["robust_acc"] < r_both[("worst_case", "linf")]["robust_acc"]


def test_suite_resumes_to_the_same_result(
    trained: tuple[nn.Module, torch.Tensor, torch.Tensor],
) -> None:
    model, x, y = trained
    suite = RobustnessSuite({"pgd": PGD(eps=EPS, steps=3)}, batch_size=20, run_checks=False)
    full = suite.run(model, x, y)
    saved: list[dict] = []

    class Stop(Exception):
        pass

    def interrupt(state: dict) -> None:
        saved.append(state)
        if suite.units_done(state) == 4:
            raise Stop

    with pytest.raises(Stop):
        suite.run(model, x, y, on_unit=interrupt)
    calls: list[int] = []
    resumed = suite.run(model, x, y, state=saved[-1], on_unit=lambda s: calls.append(1))
    assert len(calls) == suite.n_units(60) - 4
    a = pd.DataFrame(full.to_records()).drop(columns="seconds")
    b = pd.DataFrame(resumed.to_records()).drop(columns="seconds")
    assert a.equals(b)


def test_checks_pass_on_a_normal_model_and_flag_masked_ones(
    trained: tuple[nn.Module, torch.Tensor, torch.Tensor],
) -> None:
    model, x, y = trained
    x, y = x[:30], y[:30]
    assert not zero_gradients(model, x, y).flagged
    assert not nondeterministic_forward(model, x).flagged
    assert not softmax_outputs(model, x).flagged
    assert not unbounded_attack(model, x, y).flagged
    # Softmax outputs, randomness, and a hard-thresholded (zero-gradient) input are flagged.
    soft = nn.Sequential(model, nn.Softmax(dim=1))
    assert softmax_outputs(soft, x).flagged

    class Noisy(nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return model(t + 0.05 * torch.randn_like(t))

    assert nondeterministic_forward(Noisy(), x).flagged

    class Quantised(nn.Module):
        def forward(self, t: torch.Tensor) -> torch.Tensor:
            return model(torch.round(t * 4) / 4)  # gradient is zero almost everywhere

    masked = Quantised()
    assert zero_gradients(masked, x, y).flagged
    assert unbounded_attack(masked, x, y).flagged


def test_black_box_check() -> None:
    fooled = {
        "pgd": torch.tensor([True, False, False, False]),
        "square": torch.tensor([True, True, False, False]),
    }
    white = {"pgd": True, "square": False}
    check = black_box_beats_white_box(fooled, white, 4)
    assert check.flagged and check.value == pytest.approx(0.25)
    fooled["pgd"] = torch.tensor([True, True, True, False])
    assert not black_box_beats_white_box(fooled, white, 4).flagged


def test_suite_reports_checks(trained: tuple[nn.Module, torch.Tensor, torch.Tensor]) -> None:
    model, x, y = trained
    suite = RobustnessSuite(
        {"deepfool": DeepFool(eps=0.3, steps=10), "square": Square(eps=EPS, n_queries=30)},
        batch_size=60,
        check_size=30,
    )
    report = suite.run(model, x, y)
    names = [c.name for c in report.checks]
    assert names == [
        "zero_gradients",
        "nondeterministic_forward",
        "softmax_outputs",
        "unbounded_attack",
        "black_box_beats_white_box",
    ]
    assert "checks" in report.to_json() and report.to_json()["checks"][0]["name"] == names[0]


def test_suite_validates_input() -> None:
    with pytest.raises(ValueError):
        RobustnessSuite({})
    suite = RobustnessSuite({"fgsm": FGSM()}, run_checks=False)
    with pytest.raises(ValueError, match="labels"):
        suite.run(tiny_cnn(), torch.rand(4, 3, 32, 32), torch.zeros(3, dtype=torch.long))
