"""Score cells with a supernet's inherited weights: the one-shot half of a ranking measurement.

Every cell is charged the same: BatchNorm statistics re-estimated on the same fixed batches of
training images (the supernet's shared statistics belong to no single path), then the same
held-out images, clean and under FGSM. Per-image correctness is kept so a score on the whole split
and on its two disjoint halves (the test-retest of the split) come from one pass.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch

from robnas.attacks import make_attack
from robnas.data.datasets import ImageData, batches
from robnas.genotype import Genotype
from robnas.models.supernet import Supernet, recalibrate_bn


@dataclass(frozen=True)
class CellScore:
    """One cell's per-image results on the held-out split: correctness (clean, and under FGSM if
    asked) and the clean log-probability of the true class, a continuous score that counts how
    sure a right answer is and how wrong a wrong one (less noisy than 0/1 hits per image)."""

    genotype: Genotype
    clean: np.ndarray  # bool [images]
    fgsm: np.ndarray | None  # bool [images] or None
    clean_logp: np.ndarray | None = None  # float [images]

    def accuracy(self, key: str, part: slice = slice(None)) -> float:
        hits = self.clean if key == "clean" else self.fgsm
        if hits is None:
            raise ValueError(f"{key} was not scored")
        return float(hits[part].mean())

    def mean_logp(self, part: slice = slice(None)) -> float:
        if self.clean_logp is None:
            raise ValueError("clean log-probabilities were not kept")
        return float(self.clean_logp[part].mean())


@torch.no_grad()
def _correct(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return model(x).argmax(1) == y


@torch.no_grad()
def _clean(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[correct, log p(true class)] per image, from one forward."""
    logp = torch.log_softmax(model(x).float(), dim=1)
    return torch.stack([(logp.argmax(1) == y).float(), logp.gather(1, y[:, None])[:, 0]])


def score_cells(
    supernet: Supernet,
    genotypes: Iterable[Genotype],
    *,
    recal: ImageData,
    heldout: ImageData,
    recal_batches: int = 4,
    batch_size: int = 256,
    fgsm_eps: float | None = 1 / 255,
    device: torch.device | str = "cpu",
    on_cell: Callable[[CellScore], None] | None = None,
) -> list[CellScore]:
    """Score each genotype; `on_cell` sees each result as it is made (for durable writes)."""
    supernet.to(device).eval()
    attack = make_attack("fgsm", eps=fgsm_eps) if fgsm_eps else None
    # shuffled once by a fixed seed: every cell sees the same batches, and no batch is one class
    # (a subset keeps the class order of the folders it was read from)
    order = torch.Generator().manual_seed(0)
    recal_list = list(batches(recal, batch_size, shuffle=True, generator=order, device=device))
    held = list(batches(heldout, batch_size, shuffle=False, device=device))
    out = []
    for g in genotypes:
        recalibrate_bn(supernet, recal_list, g, n_batches=recal_batches)
        model = supernet.extract(g).eval()  # a standalone copy: attacks see one fixed network
        correct, logp = torch.cat([_clean(model, x, y) for x, y in held], dim=1).cpu().numpy()
        fgsm = None
        if attack is not None:
            hits = [_correct(model, attack(model, x, y), y) for x, y in held]
            fgsm = torch.cat(hits).cpu().numpy()
        score = CellScore(g, correct.astype(bool), fgsm, logp)
        if on_cell is not None:
            on_cell(score)
        out.append(score)
    return out
