"""The evaluator template: one query per isomorphism class, status and structure for every result."""

from __future__ import annotations

import math

import torch
from torch import nn

from robnas.data.datasets import ImageData
from robnas.evaluators.base import NetworkEvaluator, QueryCounter, Scorer, Scoring
from robnas.genotype import Genotype
from robnas.models import sizing
from robnas.result import Result, signed_score
from robnas.space.search_space import get_space

SPACE = get_space("nb201")
MACRO = SPACE.resolve_macro("tiny")
# node 1 feeds nothing, so its op does not change the network function: A and B are isomorphs
A = SPACE.parse("nb201:|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
B = SPACE.parse("nb201:|avg_pool_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|")
C = SPACE.parse("nb201:|avg_pool_3x3~0|+|none~0|none~1|+|nor_conv_1x1~0|none~1|none~2|")
DATA = ImageData(torch.zeros(4, 3, 32, 32, dtype=torch.uint8), torch.arange(4), tuple("abcdefghij"))


class Counting(NetworkEvaluator):
    """A toy evaluator whose 'network' is the identity; it records which genotypes it built."""

    def __init__(self) -> None:
        self.space, self.macro, self.seed = SPACE, dict(MACRO), 0
        self.scorer = Scorer(
            SPACE, MACRO, "cifar10", Scoring(attack=None, indicator_samples=1, batch_size=4)
        )
        self.built: list[str] = []
        super().__init__()

    def network(self, genotype: Genotype, seed: int) -> tuple[nn.Module, ImageData, torch.device]:
        self.built.append(genotype.to_str())
        return nn.Identity(), DATA, torch.device("cpu")


def test_an_isomorph_is_answered_from_memory_and_costs_no_query() -> None:
    evaluator = Counting()
    first = evaluator.evaluate(A)
    again = evaluator.evaluate(B)  # an isomorph of A: not built, not a query
    evaluator.evaluate(C)
    assert evaluator.built == [A.to_str(), C.to_str()]
    assert evaluator.queries == 2 and evaluator.counter.cache_hits == 1
    assert evaluator.counter.queried == [A.to_str(), C.to_str()]
    assert first.ok and again.ok and again.num_params == sizing.num_params(SPACE, B, MACRO)
    assert {"density", "edge_density", "flops"} <= set(again.metrics)


def test_non_finite_scores_mark_the_result_failed() -> None:
    evaluator = Counting()
    original = evaluator.scorer.model_metrics
    evaluator.scorer.model_metrics = lambda *a, **k: {**original(*a, **k), "x": math.nan}  # type: ignore[method-assign]
    result = evaluator.evaluate(A)
    assert result.status == "failed" and not result.ok
    assert signed_score(result, "x", "maximize") == -math.inf


def test_query_counter_reset_and_signed_score_direction() -> None:
    counter = QueryCounter(SPACE)
    counter.record(A, Result({"acc": 0.5}))
    assert counter.is_cached(B) and not counter.is_cached(C)
    counter.reset()
    assert not counter.is_cached(A) and counter.queries == 0
    ok = Result({"acc": 0.5, "loss": 2.0})
    assert signed_score(ok, "acc", "maximize") == 0.5
    assert signed_score(ok, "loss", "minimize") == -2.0
    assert signed_score(ok, "missing", "maximize") == -math.inf
