"""Random search, RobNet's protocol: sample architectures uniformly (each edge uniform), score all."""

from __future__ import annotations

from robnas.genotype import Genotype
from robnas.strategies.base import Strategy


class RandomSearch(Strategy):
    """Uniform feasible samples, without repetition while unseen genotypes remain."""

    name = "random"

    def ask(self) -> Genotype:
        return self.sample_new()
