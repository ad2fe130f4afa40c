"""The evaluation protocol: per-example bookkeeping over a list of attacks, resumable.

For every attack and batch (a *unit*), the attack runs on the examples that are still correctly
classified: the clean-correct ones (default, so each attack's robust accuracy stands alone, as in
RobNet's table) or, with `cascade=True`, those that survived every earlier attack (AutoAttack's
protocol; cheaper, and then an attack's robust accuracy is cumulative). Worst cases are taken
per threat model (norm and eps): one `worst_case` row per threat model, the worst case per example
over that model's attacks; an L2 attack never lowers a Linf number, and the cascade only skips
examples fooled within the same threat model. All state lives in `SuiteState`, a dict of tensors
that can be saved after every unit and handed back to resume.
"""

from __future__ import annotations

import logging
import math
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from robnas.attacks import format_eps
from robnas.attacks.base import Attack, flat_norm, frozen_model
from robnas.attacks.checks import Check, black_box_beats_white_box, model_checks
from robnas.attacks.ssim import ssim

log = logging.getLogger(__name__)

SuiteState = dict[str, Any]
PER_EXAMPLE = ("robust", "attacked", "linf", "l2", "ssim")


@dataclass
class SuiteReport:
    rows: list[dict[str, Any]]
    checks: list[Check] = field(default_factory=list)

    def to_records(self) -> list[dict[str, Any]]:
        """Rows as plain dicts (pandas.DataFrame(report.to_records()) gives the table)."""
        return [dict(r) for r in self.rows]

    def metrics(self) -> dict[str, float]:
        """`clean_acc`, `<attack>_acc` per attack, and `worst_case_acc` (one threat model) or
        `worst_case_<norm>_<eps>_acc` per threat model, as fractions."""
        worst = [r for r in self.rows if r["attack"] == "worst_case"]
        out: dict[str, float] = {}
        for r in self.rows:
            if r["attack"] == "clean":
                out["clean_acc"] = r["robust_acc"]
            elif r["attack"] != "worst_case":
                out[f"{r['attack']}_acc"] = r["robust_acc"]
            elif len(worst) == 1:
                out["worst_case_acc"] = r["robust_acc"]
            else:
                out[f"worst_case_{r['norm']}_{r['eps'] or 'unbounded'}_acc"] = r["robust_acc"]
        return out

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.to_records(), "checks": [c.to_dict() for c in self.checks]}


class RobustnessSuite:
    """Run `attacks` (name -> configured Attack, in order) over a dataset, batch by batch."""

    def __init__(
        self,
        attacks: Mapping[str, Attack],
        *,
        batch_size: int = 100,
        cascade: bool = False,
        seed: int = 0,
        run_checks: bool = True,
        check_size: int = 100,
    ) -> None:
        if not attacks:
            raise ValueError("the suite needs at least one attack")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.attacks = dict(attacks)
        self.batch_size = int(batch_size)
        self.cascade = bool(cascade)
        self.seed = int(seed)
        self.run_checks = run_checks
        self.check_size = int(check_size)

    # ---- state -------------------------------------------------------------------------------
    def n_batches(self, n: int) -> int:
        return math.ceil(n / self.batch_size)

    def n_units(self, n: int) -> int:
        """Work units (batches) to do: clean predictions, then one per attack and batch."""
        return (1 + len(self.attacks)) * self.n_batches(n)

    def new_state(self, n: int) -> SuiteState:
        nb = self.n_batches(n)
        state: SuiteState = {
            "n": n,
            "clean_pred": torch.full((n,), -1, dtype=torch.long),
            "clean_done": torch.zeros(nb, dtype=torch.bool),
            "attacks": {},
            "checks": None,
        }
        for name in self.attacks:
            state["attacks"][name] = {
                "robust": torch.zeros(n, dtype=torch.bool),
                "attacked": torch.zeros(n, dtype=torch.bool),
                "linf": torch.full((n,), float("nan")),
                "l2": torch.full((n,), float("nan")),
                "ssim": torch.full((n,), float("nan")),
                "seconds": 0.0,
                "done": torch.zeros(nb, dtype=torch.bool),
            }
        return state

    def units_done(self, state: SuiteState) -> int:
        return int(state["clean_done"].sum()) + sum(
            int(a["done"].sum()) for a in state["attacks"].values()
        )

    # ---- running -----------------------------------------------------------------------------
    def run(
        self,
        model: nn.Module,
        images: Tensor,
        labels: Tensor,
        *,
        state: SuiteState | None = None,
        on_unit: Callable[[SuiteState], None] | None = None,
        device: str | torch.device | None = None,
    ) -> SuiteReport:
        """Evaluate; `on_unit(state)` is called after every finished unit (save it to resume)."""
        n = images.shape[0]
        if labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {tuple(labels.shape)}")
        dev = torch.device(device) if device is not None else next(model.parameters()).device
        if state is None:
            state = self.new_state(n)
        elif state["n"] != n or set(state["attacks"]) != set(self.attacks):
            raise ValueError("the saved suite state belongs to a different evaluation")
        spans = [
            (b, b * self.batch_size, min(n, (b + 1) * self.batch_size))
            for b in range(self.n_batches(n))
        ]
        for b, lo, hi in spans:
            if state["clean_done"][b]:
                continue
            with torch.no_grad(), frozen_model(model):
                pred = model(images[lo:hi].to(dev)).argmax(1)
            state["clean_pred"][lo:hi] = pred.cpu()
            state["clean_done"][b] = True
            if on_unit:
                on_unit(state)
        correct = state["clean_pred"] == labels.cpu()
        previous: list[str] = []
        for name, attack in self.attacks.items():
            slot = state["attacks"][name]
            for b, lo, hi in spans:
                if slot["done"][b]:
                    continue
                target = correct[lo:hi].clone()
                if self.cascade:
                    for prev in previous:
                        if threat_model(self.attacks[prev]) == threat_model(attack):
                            target &= state["attacks"][prev]["robust"][lo:hi]
                self._unit(model, attack, name, b, images[lo:hi], labels[lo:hi], target, slot, dev)
                slot["done"][b] = True
                if on_unit:
                    on_unit(state)
            previous.append(name)
        if self.run_checks and state["checks"] is None:
            state["checks"] = [c.to_dict() for c in self._checks(model, images, labels, state, dev)]
            if on_unit:
                on_unit(state)
        checks = [Check(**c) for c in state["checks"] or []]
        return SuiteReport(self._rows(state, labels), checks)

    def _unit(
        self,
        model: nn.Module,
        attack: Attack,
        name: str,
        batch: int,
        images: Tensor,
        labels: Tensor,
        target: Tensor,
        slot: dict[str, Any],
        dev: torch.device,
    ) -> None:
        idx = target.nonzero().squeeze(1)
        if idx.numel() == 0:
            return
        x, y = images[idx].to(dev), labels[idx].to(dev)
        # One stream per (seed, attack, batch): resuming reproduces an uninterrupted run.
        gen = torch.Generator(device=dev).manual_seed(
            self.seed * 1_000_003 + zlib.crc32(name.encode()) % 100_003 * 10_007 + batch
        )
        start = time.perf_counter()
        adv = attack(model, x, y, generator=gen)
        with torch.no_grad(), frozen_model(model):
            robust = model(adv).argmax(1) == y
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        slot["seconds"] += time.perf_counter() - start
        offset = batch * self.batch_size
        where = idx + offset
        delta = adv - x
        slot["robust"][where] = robust.cpu()
        slot["attacked"][where] = True
        slot["linf"][where] = flat_norm(delta, "linf").cpu()
        slot["l2"][where] = flat_norm(delta, "l2").cpu()
        slot["ssim"][where] = ssim(x, adv).cpu()

    def _checks(
        self, model: nn.Module, images: Tensor, labels: Tensor, state: SuiteState, dev: torch.device
    ) -> list[Check]:
        k = min(self.check_size, images.shape[0])
        checks = model_checks(model, images[:k].to(dev), labels[:k].to(dev), seed=self.seed)
        correct = state["clean_pred"] == labels.cpu()
        fooled = {
            name: (s["attacked"] & ~s["robust"])[correct] for name, s in state["attacks"].items()
        }
        white = {name: a.white_box for name, a in self.attacks.items()}
        checks.append(black_box_beats_white_box(fooled, white, int(correct.sum())))
        for c in checks:
            if c.flagged:
                log.warning("gradient-masking check %s flagged: %s", c.name, c.message)
        return checks

    # ---- results -----------------------------------------------------------------------------
    def _rows(self, state: SuiteState, labels: Tensor) -> list[dict[str, Any]]:
        n = state["n"]
        correct = state["clean_pred"] == labels.cpu()
        n_correct = int(correct.sum())
        clean_acc = n_correct / n if n else float("nan")
        rows: list[dict[str, Any]] = [
            _row("clean", None, "", n, 0, clean_acc, float("nan"), clean_acc, 0.0, None)
        ]
        worst: dict[tuple[str, float | None], Tensor] = {}
        seconds: dict[tuple[str, float | None], float] = {}
        for name, attack in self.attacks.items():
            s = state["attacks"][name]
            key = threat_model(attack)
            robust = s["robust"] & correct
            fooled = s["attacked"] & ~s["robust"]
            worst[key] = worst.get(key, correct.clone()) & ~fooled
            seconds[key] = seconds.get(key, 0.0) + float(s["seconds"])
            worst_n = int(worst[key].sum())
            rows.append(
                _row(
                    name,
                    attack.eps,
                    attack.norm,
                    n,
                    int(s["attacked"].sum()),
                    int(robust.sum()) / n if not self.cascade else worst_n / n,
                    int(fooled.sum()) / n_correct if n_correct else float("nan"),
                    worst_n / n,
                    float(s["seconds"]),
                    s,
                )
            )
        for (norm, eps), survived in worst.items():
            worst_n = int(survived.sum())
            rows.append(
                _row(
                    "worst_case",
                    eps,
                    norm,
                    n,
                    0,
                    worst_n / n,
                    (n_correct - worst_n) / n_correct if n_correct else float("nan"),
                    worst_n / n,
                    seconds[(norm, eps)],
                    None,
                )
            )
        return rows


def threat_model(attack: Attack) -> tuple[str, float | None]:
    """(norm, eps): attacks with the same pair are compared, and their worst case taken, together."""
    return attack.norm, attack.eps


def _stat(values: Tensor, how: str) -> float:
    v = values[~values.isnan()]
    if v.numel() == 0:
        return float("nan")
    return float(v.mean()) if how == "mean" else float(v.max())


def _row(
    attack: str,
    eps: float | None,
    norm: str,
    n: int,
    attacked: int,
    robust_acc: float,
    success_rate: float,
    worst_acc: float,
    seconds: float,
    slot: dict[str, Any] | None,
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "attack": attack,
        "eps": "" if eps is None else format_eps(eps) if norm == "linf" else f"{eps:g}",
        "norm": norm,
        "n": n,
        "attacked": attacked,
        "robust_acc": robust_acc,
        "success_rate": success_rate,
        "worst_acc": worst_acc,
        "seconds": seconds,
    }
    for key in ("linf", "l2"):
        values = slot[key] if slot is not None else torch.zeros(0)
        row[f"{key}_mean"] = _stat(values, "mean")
        row[f"{key}_max"] = _stat(values, "max")
    ssim_mean = _stat(slot["ssim"], "mean") if slot is not None else float("nan")
    row["noise_rate"] = 1 - ssim_mean
    return row
