"""The ranker protocol's evaluator: NASWOT at the deployed size and path counts, no training."""

from __future__ import annotations

import pytest
import torch

from robnas.data.datasets import ImageData
from robnas.errors import ConfigError
from robnas.evaluators.ranker import ObjectiveEvaluator, RankerEvaluator
from robnas.genotype import Genotype
from robnas.models import sizing
from robnas.objectives.protocols import objective
from robnas.objectives.scores import path_features
from robnas.space.search_space import get_space

SMOOTH = "|avg_pool_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|nor_conv_3x3~2|"
# the same function: node 1 feeds nothing, so the op on the edge into it does not matter
CELL = "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
ISOMORPH = "|nor_conv_1x1~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
DEAD = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"


def _images(n: int = 16) -> ImageData:
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return ImageData(images, torch.arange(n) % 10, tuple("abcdefghij"))


def _evaluator(target: str = "fgsm@1") -> ObjectiveEvaluator:
    space = get_space("nb201")
    small = space.resolve_macro(C=4, N=1)  # the deployed size in the tests: fast
    return ObjectiveEvaluator(RankerEvaluator(space, small, _images()), "ranker", target)


def test_measures_the_declared_signals_and_the_objective() -> None:
    space = get_space("nb201")
    evaluator = _evaluator()
    g = Genotype.from_str(f"nb201:{SMOOTH}")
    result = evaluator.evaluate(g)
    assert result.ok
    m = result.metrics
    assert {k: m[k] for k in path_features(g.cells[0])} == path_features(g.cells[0])
    assert m["min_pool_per_path"] == 1.0 and m["free_paths"] == 0.0
    assert result.num_params == sizing.num_params(
        space, g, space.resolve_macro(C=4, N=1), "cifar10"
    )
    assert m["objective"] == objective("ranker", "fgsm@1", m, result.num_params)
    assert m["cpu_s"] > 0
    # no training: the same cell gives the same NASWOT in a fresh evaluator
    assert _evaluator().evaluate(g).metrics["naswot"] == m["naswot"]


def test_isomorphs_are_one_query() -> None:
    evaluator = _evaluator("clean")
    a = evaluator.evaluate(Genotype.from_str(f"nb201:{CELL}"))
    b = evaluator.evaluate(Genotype.from_str(f"nb201:{ISOMORPH}"))
    assert a.metrics["naswot"] == b.metrics["naswot"] and evaluator.queries == 1


def test_a_cell_that_ignores_its_input_fails_and_never_wins() -> None:
    result = _evaluator().evaluate(Genotype.from_str(f"nb201:{DEAD}"))
    assert result.status == "failed"


def test_refuses_spaces_without_nb201_cells() -> None:
    space = get_space("darts")
    with pytest.raises(ConfigError, match="--protocol supernet"):
        RankerEvaluator(space, space.resolve_macro(None), _images())
