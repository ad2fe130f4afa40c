"""AutoAttack (Croce & Hein 2020) through the authors' implementation, `pyautoattack`.

`AutoAttack` runs the standard version (APGD-CE, APGD-T, FAB-T, Square with the official
iteration counts); `APGDCE` and `Square` run one component alone. pyautoattack seeds torch's
global generator, so every call runs inside `torch.random.fork_rng` to leave the caller's
random state untouched; the seed is drawn from the call's generator.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from robnas.attacks.base import Attack
from robnas.specs import DEFAULT_EPS

log = logging.getLogger(__name__)

_AA_NORMS = {"linf": "Linf", "l2": "L2"}


def _seed_from(generator: torch.Generator) -> int:
    return int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device))


@contextlib.contextmanager
def _isolated_rng(device: torch.device) -> Iterator[None]:
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


class APGDCE(Attack):
    name = "apgd_ce"

    def __init__(
        self,
        eps: float = DEFAULT_EPS,
        *,
        norm: str = "linf",
        n_iter: int = 100,
        n_restarts: int = 1,
        seed: int = 0,
        eval_mode: bool = True,
    ) -> None:
        super().__init__(eps=eps, norm=norm, seed=seed, eval_mode=eval_mode)
        self.n_iter = int(n_iter)
        self.n_restarts = int(n_restarts)

    def perturb(
        self, model: nn.Module, images: Tensor, labels: Tensor, generator: torch.Generator
    ) -> Tensor:
        from pyautoattack.autopgd_base import APGDAttack

        attack = APGDAttack(
            model,
            n_iter=self.n_iter,
            norm=_AA_NORMS[self.norm],
            n_restarts=self.n_restarts,
            eps=self.bound(),
            seed=_seed_from(generator),
            loss="ce",
            eot_iter=1,
            rho=0.75,
            device=images.device,
            logger=log,
        )
        with _isolated_rng(images.device):
            return attack.perturb(images, labels)


class Square(Attack):
    name = "square"
    white_box = False

    def __init__(
        self,
        eps: float = DEFAULT_EPS,
        *,
        norm: str = "linf",
        n_queries: int = 5000,
        p_init: float = 0.8,
        seed: int = 0,
        eval_mode: bool = True,
    ) -> None:
        super().__init__(eps=eps, norm=norm, seed=seed, eval_mode=eval_mode)
        self.n_queries = int(n_queries)
        self.p_init = float(p_init)

    def perturb(
        self, model: nn.Module, images: Tensor, labels: Tensor, generator: torch.Generator
    ) -> Tensor:
        from pyautoattack.square import SquareAttack

        attack = SquareAttack(
            model,
            p_init=self.p_init,
            n_queries=self.n_queries,
            eps=self.bound(),
            norm=_AA_NORMS[self.norm],
            n_restarts=1,
            seed=_seed_from(generator),
            verbose=False,
            device=images.device,
            resc_schedule=False,
        )
        with _isolated_rng(images.device), torch.no_grad():
            return attack.perturb(images, labels)


class AutoAttack(Attack):
    """Standard AutoAttack. `n_iter` / `n_queries` shorten it for wiring tests only."""

    name = "aa"

    def __init__(
        self,
        eps: float = DEFAULT_EPS,
        *,
        norm: str = "linf",
        n_iter: int = 100,
        n_queries: int = 5000,
        seed: int = 0,
        eval_mode: bool = True,
    ) -> None:
        super().__init__(eps=eps, norm=norm, seed=seed, eval_mode=eval_mode)
        self.n_iter = int(n_iter)
        self.n_queries = int(n_queries)

    def perturb(
        self, model: nn.Module, images: Tensor, labels: Tensor, generator: torch.Generator
    ) -> Tensor:
        from pyautoattack import AutoAttack as OfficialAutoAttack

        adversary = OfficialAutoAttack(
            model,
            eps=self.bound(),
            norm=_AA_NORMS[self.norm],  # type: ignore[arg-type]
            seed=_seed_from(generator),
            version="standard",
            device=images.device,
        )
        adversary.verbose = False
        # The standard version's counts are 100 iterations and 5000 queries; only tests change them.
        for sub in (adversary.apgd, adversary.apgd_targeted, adversary.fab):
            _set_iterations(sub, self.n_iter)
        adversary.square.n_queries = self.n_queries
        with _isolated_rng(images.device):
            adv, _ = adversary.run_standard_evaluation(images, labels, batch_size=images.shape[0])
        return adv


def _set_iterations(attack: object, n_iter: int) -> None:
    attack.n_iter = n_iter  # type: ignore[attr-defined]
    if hasattr(attack, "n_iter_orig"):  # APGD derives its checkpoints from n_iter at init
        attack.n_iter_orig = n_iter  # type: ignore[attr-defined]
        attack.n_iter_2 = max(int(0.22 * n_iter), 1)  # type: ignore[attr-defined]
        attack.n_iter_min = max(int(0.06 * n_iter), 1)  # type: ignore[attr-defined]
        attack.size_decr = max(int(0.03 * n_iter), 1)  # type: ignore[attr-defined]
