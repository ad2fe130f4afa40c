"""Toy search problems shared by the strategy, study and CLI tests (also run in subprocesses)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from robnas.genotype import Genotype
from robnas.models import sizing
from robnas.result import Result
from robnas.space.search_space import SearchSpace, get_space

if TYPE_CHECKING:
    from robnas.search.settings import SearchSettings

# A user space of 4 ops x 6 edges (4,096 cells): small enough for exhaustive checks.
TOY_SPACE = """
name = "toy"
[cell]
inputs = 1
nodes = 3
edge = "choice"
ops = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3"]
output = "last"
[macro]
family = "nb201"
C = 4
N = 1
"""


def toy_space(folder: Path) -> SearchSpace:
    path = Path(folder) / "toy.toml"
    if not path.exists():
        path.write_text(TOY_SPACE)
    return get_space(str(path))


class ToyEvaluator:
    """Additive per-edge op scores plus one pairwise bonus: a known, unique optimum."""

    def __init__(
        self, space: SearchSpace, *, seed: int = 0, sleep: float = 0.0, log: Path | None = None
    ):
        rng = np.random.default_rng(seed)
        self.space = space
        self.weights = rng.normal(size=(space.num_edges, len(space.edge_choices)))
        self.sleep = sleep
        self.log = log
        self.calls: list[str] = []

    def score(self, genotype: Genotype) -> float:
        idx = [self.space.edge_choices.index(e) for e in genotype.edges(0)]
        value = sum(self.weights[e, i] for e, i in enumerate(idx))
        return float(value + (1.5 if idx[0] == idx[-1] else 0.0))

    def optimum(self) -> float:
        best = self.weights.max(axis=1).sum()
        shared = max(self.weights[0, i] + self.weights[-1, i] for i in range(self.weights.shape[1]))
        rest = self.weights[1:-1].max(axis=1).sum()
        return float(max(best, shared + rest + 1.5))

    def evaluate(self, genotype: Genotype) -> Result:
        if self.sleep:
            time.sleep(self.sleep)
        self.calls.append(genotype.to_str())
        if self.log is not None:
            with open(self.log, "a") as handle:
                handle.write(genotype.to_str() + "\n")
        return Result(
            metrics={"score": self.score(genotype)},
            num_params=sizing.num_params(self.space, genotype, self.space.resolve_macro()),
            seconds=0.0,
        )


class CrashAfter(ToyEvaluator):
    """Raises on the (k+1)-th evaluation, like a worker dying mid-trial."""

    def __init__(self, space: SearchSpace, k: int, **kw: object) -> None:
        super().__init__(space, **kw)  # type: ignore[arg-type]
        self.k = k

    def evaluate(self, genotype: Genotype) -> Result:
        if len(self.calls) >= self.k:
            raise RuntimeError("simulated crash")
        return super().evaluate(genotype)


def search_settings(*argv: str) -> SearchSettings:
    """The settings `robnas search ARGV` resolves (parsed by the CLI; nothing is written)."""
    from robnas.cli import build_parser, parse_values
    from robnas.cli.search import request_of
    from robnas.search.pipeline import resolve_settings

    args = parse_values(build_parser().parse_args(["search", *argv]))
    return resolve_settings(request_of(args))


#: Every field of the one settings type of the three modes before it was split by mode, with the
#: value it held in a mode that did not use it (as the base version wrote config.json).
OLD_UNION_DEFAULTS = {
    "attack_steps": 20, "benchmark": None, "benchmark_macro": None, "data_dir": None,
    "eps": "8/255", "final_train": False, "finetune": None, "finetune_size": None,
    "flops_budget": None, "prescreen": None, "prescreen_ratio": 4, "repeats": 1,
    "score_size": None, "search_macro": None, "supernet": None, "train": None,
    "train_size": None, "val_size": None,
}  # fmt: skip


def as_old_config(run: Path, **fields: object) -> dict:
    """Rewrite RUN/config.json as the settings were written before they were split by mode
    (the other modes' fields at their defaults), with `fields` changed; the dict written."""
    path = Path(run) / "config.json"
    old = {**OLD_UNION_DEFAULTS, **json.loads(path.read_text()), **fields}
    path.write_text(json.dumps(old, indent=2, sort_keys=True))
    return old
