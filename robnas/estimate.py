"""How long a supernet search will take on this machine, said once after its first minute.

A preset's documented time was measured on one machine; a slower one (another CPU kind, fewer
free cores) runs longer. `SearchEstimate` watches the supernet's training progress and, once
`after` seconds of steps have passed, predicts the whole job from the measured step rate:

    total = elapsed + rate x (the rest of the pass + validation + trials x one candidate)

in units of one clean supernet step on a uniformly sampled path. The pass's steps are not all
alike: an FGSM-RS step costs `adv_over_clean` clean steps, and a path of the dense start (each
op on with probability p, falling from 1 to 1/2) costs `1 + dense_extra * (2p - 1)`. Validation
and a candidate of the tiny preset's protocol cost fixed numbers of clean steps; another protocol
scales the candidate by its images and attack steps. The constants are the ratios that
`benchmarks/bench_search.py` prints under "estimator"; ratios carry across machines far better
than seconds do. Nothing about the search changes: the estimate is only reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from robnas.space.cell import CellSpace
from robnas.space.search_space import get_space

__all__ = [
    "ASSUMED_MINUTES",
    "COSTS",
    "COSTS_BY_THREADS",
    "Costs",
    "SearchEstimate",
    "costs_for",
    "search_estimate",
]

#: The time each preset's documentation states for the main job (`robnas search --space darts
#: --budget 5M --preset <name>`), in minutes (experiments/results/main_job/RUN.md).
ASSUMED_MINUTES: dict[str, float] = {"tiny": 8.0}


@dataclass(frozen=True)
class Costs:
    """Relative costs, in clean supernet steps on a uniform path (see the module docstring)."""

    adv_over_clean: float
    dense_extra: float
    validation_steps: float
    candidate_steps: float


#: Measured by benchmarks/bench_search.py on a trained tiny supernet (38% clean), wall seconds on
#: an idle 2-core AMD EPYC (Zen 5), side by side with one and two torch threads
#: (benchmarks/results/bench_search/threads/). A second thread speeds a supernet step 1.5x but a
#: candidate only 1.2x, so the candidates' share of the job grows with the threads: constants
#: measured on one thread made the two-thread main job's estimate 21% short (6 min for 7.6).
COSTS_BY_THREADS = {
    1: Costs(adv_over_clean=1.71, dense_extra=1.08, validation_steps=93.2, candidate_steps=111.1),
    2: Costs(adv_over_clean=1.83, dense_extra=1.02, validation_steps=95.6, candidate_steps=139.8),
}
COSTS = COSTS_BY_THREADS[1]


def costs_for(threads: int) -> Costs:
    """The constants measured with `threads` torch threads (more than two: the two-thread set,
    the most this workplace could measure)."""
    return COSTS_BY_THREADS[min(max(int(threads), 1), max(COSTS_BY_THREADS))]


#: The tiny preset's candidate protocol, which `candidate_steps` was measured with.
_TINY_PROTOCOL = {"finetune_images": 500, "finetune_epochs": 1, "score_images": 250, "steps": 20}


def candidate_scale(
    finetune_images: int, finetune_epochs: int, score_images: int, attack_steps: int
) -> float:
    """A candidate protocol's cost over the tiny one's: finetune (4 passes an image: attack
    forward/backward, training forward/backward) plus scoring (forward/backward per attack step)."""

    def work(ft: int, epochs: int, score: int, steps: int) -> float:
        return 4.0 * ft * epochs + 2.0 * score * steps

    tiny = _TINY_PROTOCOL
    base = work(
        tiny["finetune_images"], tiny["finetune_epochs"], tiny["score_images"], tiny["steps"]
    )
    return work(finetune_images, finetune_epochs, score_images, attack_steps) / base


class SearchEstimate:
    """A progress callback for the supernet's training that reports the job's estimated total
    once. `emit` gets the one line; `then` (the CLI's progress bar) still gets every report."""

    def __init__(
        self,
        *,
        clean_fraction: float,
        dense_fraction: float,
        trials: int,
        candidate_scale: float = 1.0,
        costs: Costs = COSTS,
        preset: str | None = None,
        emit: Callable[[str], None],
        then: Callable[[Any], None] | None = None,
        after: float = 60.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.clean_fraction = float(clean_fraction)
        self.dense_fraction = float(dense_fraction)
        self.trials = int(trials)
        self.candidate_scale = float(candidate_scale)
        self.costs = costs
        self.preset = preset
        self.emit = emit
        self.then = then
        self.after = float(after)
        self.clock = clock
        self.began = clock()  # the job's start: data loading counts too
        self.first: tuple[float, int] | None = None  # (time, steps done) at the first report
        self.minutes: float | None = None  # the estimate, once made

    def unit(self, step: int, total: int) -> float:
        """The cost of optimiser step `step` (from 0) of `total`, in clean uniform steps."""
        dense = round(self.dense_fraction * total)
        p = 1.0 - 0.5 * min(1.0, step / dense) if dense > 0 else 0.5
        cost = 1.0 + self.costs.dense_extra * (2.0 * p - 1.0)
        clean = step < round(self.clean_fraction * total)
        return cost if clean else cost * self.costs.adv_over_clean

    def units(self, start: int, stop: int, total: int) -> float:
        return sum(self.unit(i, total) for i in range(start, stop))

    def estimate(self, now: float, done: int, total: int) -> float:
        """Predicted seconds of the whole job, from the steps between the first report and now."""
        assert self.first is not None
        t0, s0 = self.first
        rate = (now - t0) / max(self.units(s0, done, total), 1e-9)
        rest = self.units(done, total, total) + self.costs.validation_steps
        rest += self.trials * self.costs.candidate_steps * self.candidate_scale
        return (now - self.began) + rate * rest

    def message(self, minutes: float) -> str:
        assumed = ASSUMED_MINUTES.get(self.preset or "")
        text = f"estimated {minutes:.0f} min on this machine"
        if assumed is not None:
            text += f" (the {self.preset} preset assumes {assumed:.0f})"
        return text

    def __call__(self, report: Any) -> None:
        if self.then is not None:
            self.then(report)
        if self.minutes is not None or getattr(report, "kind", None) != "step":
            return
        now = self.clock()
        total = int(report.steps) * int(report.epochs)
        done = (int(report.epoch) - 1) * int(report.steps) + int(report.step)
        if self.first is None:
            self.first = (now, done)
            return
        if now - self.first[0] < self.after or done <= self.first[1]:
            return
        self.minutes = self.estimate(now, done, total) / 60.0
        self.emit(self.message(self.minutes))


def search_estimate(
    settings: Any,
    *,
    emit: Callable[[str], None],
    then: Callable[[Any], None] | None = None,
    after: float = 60.0,
) -> SearchEstimate:
    """The estimator for a supernet search's `SearchSettings` (its training schedule, sampler,
    trials and candidate protocol)."""
    train = settings.train  # a TrainConfig
    epochs = max(1, int(train.epochs))
    dense = 0.0
    space = get_space(settings.space)
    if (
        train.sampler == "dense_start"
        and isinstance(space, CellSpace)
        and space.edge_kind == "subset"
    ):
        dense = 0.5  # DenseStartSampler's default: the first half of the run's draws
    finetune = settings.finetune
    scale = candidate_scale(
        int(settings.finetune_size or 50_000),  # None: the whole (CIFAR-sized) training split
        int(finetune.epochs) if finetune is not None else 0,
        int(settings.score_size or 5_000),
        int(settings.attack_steps),
    )
    return SearchEstimate(
        costs=costs_for(torch.get_num_threads()),
        clean_fraction=float(train.clean_epochs) / epochs,
        dense_fraction=dense,
        trials=settings.trials,
        candidate_scale=scale,
        preset=settings.preset,
        emit=emit,
        then=then,
        after=after,
    )
