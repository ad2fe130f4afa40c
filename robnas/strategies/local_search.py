"""Local search (White, Nolen & Savani, UAI 2021): hill-climb over one-edge neighbourhoods.

Start from the best of `num_init` random genotypes; evaluate the current genotype's neighbours
(every genotype one edge away, in random order). `mode="first"` moves as soon as a neighbour is
better; `mode="best"` evaluates the whole neighbourhood and moves to its best if that improves.
At a local optimum the search restarts from a fresh random genotype. Nothing is queried twice:
a neighbour already evaluated is judged by its known score.
"""

from __future__ import annotations

import math
from typing import Any

from robnas.genotype import Genotype
from robnas.strategies.base import Strategy


class LocalSearch(Strategy):
    name = "local_search"

    def __init__(self, space: Any, *, num_init: int = 10, mode: str = "first", **kw: Any) -> None:
        super().__init__(space, **kw)
        if mode not in ("first", "best"):
            raise ValueError(f"mode must be 'first' or 'best', got {mode!r}")
        if num_init < 1:
            raise ValueError("num_init must be at least 1")
        self.num_init = num_init
        self.mode = mode
        self.batch: list[
            str
        ] = []  # random starts of the current climb (num_init, then 1 per restart)
        self.batch_left = num_init
        self.current: str | None = None
        self.neighbours: set[str] = set()
        self.queue: list[str] = []  # neighbours still to judge, popped from the end
        self.best_neighbour: str | None = None
        self.pending: list[str] = []  # asked, not told yet
        self.restarts = 0

    def ask(self) -> Genotype:
        while True:
            if self.batch_left > 0:
                self.batch_left -= 1
                return self._ask_random(batch=True)
            if self.current is None:
                if any(k in self.pending for k in self.batch):
                    return self._ask_random(batch=False)  # only when results are still out
                self._move_to(max(self.batch, key=lambda k: self.scores.get(k, -math.inf)))
            while self.queue:
                key = self.queue.pop()
                if key not in self.seen:
                    self.pending.append(key)
                    return self.propose(self.parse(key))
                self._consider(key)  # known already: judged without a query
            if any(k in self.neighbours for k in self.pending):
                return self._ask_random(batch=False)
            if not self._finish_neighbourhood():
                self.restarts += 1
                self.current, self.batch, self.batch_left = None, [], 1

    def _ask_random(self, *, batch: bool) -> Genotype:
        g = self.sample_new()
        key = g.to_str()
        self.pending.append(key)
        if batch:
            self.batch.append(key)
        return g

    def _move_to(self, key: str) -> None:
        self.current = key
        neighbours = [g for g in self.space.neighbours(self.parse(key)) if self.feasible(g)]
        keys = [g.to_str() for g in neighbours]
        self.neighbours = set(keys)
        order = self.rng.permutation(len(keys))
        self.queue = [keys[int(i)] for i in order[::-1]]  # popped from the end: permutation order
        self.best_neighbour = None

    def _consider(self, key: str) -> None:
        """Judge a neighbour of the current genotype by its score."""
        if self.current is None or key not in self.neighbours:
            return
        score = self.scores.get(key, -math.inf)
        here = self.scores.get(self.current, -math.inf)
        if score <= here:
            return
        if self.mode == "first":
            self._move_to(key)
        elif self.best_neighbour is None or score > self.scores[self.best_neighbour]:
            self.best_neighbour = key

    def _finish_neighbourhood(self) -> bool:
        """The neighbourhood is judged: move to its best (best mode); False at a local optimum."""
        if self.mode == "best" and self.best_neighbour is not None:
            self._move_to(self.best_neighbour)
            return True
        return False

    def _on_tell(self, genotype: Genotype, score: float, result: Any) -> None:
        key = genotype.to_str()
        if key in self.pending:
            self.pending.remove(key)
        if key in self.queue:  # told before asked (e.g. evaluated by another worker)
            self.queue.remove(key)
        self._consider(key)

    def _extra_state(self) -> dict[str, Any]:
        return {
            "batch": list(self.batch),
            "batch_left": self.batch_left,
            "current": self.current,
            "neighbours": sorted(self.neighbours),
            "queue": list(self.queue),
            "best_neighbour": self.best_neighbour,
            "pending": list(self.pending),
            "restarts": self.restarts,
        }

    def _load_extra(self, state: dict[str, Any]) -> None:
        self.batch = list(state["batch"])
        self.batch_left = int(state["batch_left"])
        self.current = state["current"]
        self.neighbours = set(state["neighbours"])
        self.queue = list(state["queue"])
        self.best_neighbour = state["best_neighbour"]
        self.pending = list(state["pending"])
        self.restarts = int(state["restarts"])
