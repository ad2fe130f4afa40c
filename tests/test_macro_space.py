"""The wrn macro space: genotype strings round-trip, samples and mutations stay in the grids,
costs equal the built network's, and every strategy respects a budget at the deployed size."""

from __future__ import annotations

import numpy as np
import pytest

from robnas import models
from robnas.errors import BudgetError, InvalidGenotype
from robnas.genotype import Genotype, MacroGenotype
from robnas.models import builder, sizing
from robnas.result import Result
from robnas.space.macro import MacroSpace
from robnas.space.search_space import get_space, space_names
from robnas.strategies import make_budget_predicate, make_strategy

TEXT = "wrn:depths=4-4-2,widths=10-12-4,block=preact,act=silu,se=none"


@pytest.fixture(scope="module")
def wrn() -> MacroSpace:
    space = get_space("wrn")
    assert isinstance(space, MacroSpace)
    return space


def test_listed_with_the_grids(wrn: MacroSpace) -> None:
    assert "wrn" in space_names()
    assert wrn.depths == (2, 3, 4, 5, 7, 9, 11)
    assert wrn.widths == tuple(range(4, 21))
    assert wrn.blocks == ("basic", "preact", "bottleneck", "robust")
    assert wrn.activations == ("relu", "silu", "softplus")
    assert wrn.se_modes == ("none", "standard", "residual")
    assert wrn.size == (7 * 17) ** 3 * 4 * 3 * 3


def test_genotype_round_trips(wrn: MacroSpace) -> None:
    g = Genotype.from_str(TEXT)
    assert isinstance(g, MacroGenotype)
    assert (g.depths, g.widths, g.block, g.activation, g.se) == (
        (4, 4, 2),
        (10, 12, 4),
        "preact",
        "silu",
        "none",
    )
    assert g.to_str() == TEXT and str(g) == TEXT
    assert Genotype.from_dict(g.to_dict()) == g
    assert hash(Genotype.from_str(TEXT)) == hash(g) and g.key == Genotype.from_str(TEXT).key
    # keys in any order, without the prefix, through the space
    assert wrn.parse("se=none,act=silu,block=preact,widths=10-12-4,depths=4-4-2") == g
    assert wrn.decode(wrn.encode(g)) == g
    rng = np.random.default_rng(0)
    for _ in range(50):
        s = wrn.sample(rng)
        assert Genotype.from_str(s.to_str()) == s and wrn.decode(wrn.encode(s)) == s


@pytest.mark.parametrize(
    "bad",
    [
        "wrn:depths=4-4-1,widths=10-12-4,block=preact,act=silu,se=none",  # depth off the grid
        "wrn:depths=4-4-2,widths=10-12-21,block=preact,act=silu,se=none",  # width off the grid
        "wrn:depths=4-4,widths=10-12,block=preact,act=silu,se=none",  # two stages
        "wrn:depths=4-4-2,widths=10-12-4,block=dense,act=silu,se=none",
        "wrn:depths=4-4-2,widths=10-12-4,block=preact,act=gelu,se=none",
        "wrn:depths=4-4-2,widths=10-12-4,block=preact,act=silu",  # se missing
        "wrn:depths=a-4-2,widths=10-12-4,block=preact,act=silu,se=none",
    ],
)
def test_bad_genotypes_refused(wrn: MacroSpace, bad: str) -> None:
    with pytest.raises(InvalidGenotype):
        wrn.parse(bad)


def test_samples_and_mutations_stay_in_the_grids(wrn: MacroSpace) -> None:
    rng = np.random.default_rng(1)
    seen_depths, seen_blocks = set(), set()
    for _ in range(200):
        g = wrn.sample(rng)
        wrn.validate(g)
        seen_depths.update(g.depths)  # type: ignore[attr-defined]
        seen_blocks.add(g.block)  # type: ignore[attr-defined]
        child = wrn.mutate(g, rng)
        wrn.validate(child)
        assert sum(a != b for a, b in zip(wrn.encode(g), wrn.encode(child))) == 1
    assert seen_depths == set(wrn.depths) and seen_blocks == set(wrn.blocks)
    g = wrn.parse(TEXT)
    near = wrn.neighbours(g)
    # depth and width move one grid step: 4 -> 3 or 5, 2 -> 3 only; 10 -> 9/11, 4 -> 5 only
    assert len(near) == (2 + 2 + 1) + (2 + 2 + 1) + 3 + 2 + 2
    assert len(set(near)) == len(near) and g not in near


@pytest.mark.parametrize("block", ["basic", "preact", "bottleneck", "robust"])
@pytest.mark.parametrize("size", [None, "tiny", "small"])
def test_cost_equals_the_built_network(wrn: MacroSpace, block: str, size: str | None) -> None:
    import torch

    from robnas.indicators.complexity import count_flops, count_params

    g = wrn.parse(f"depths=2-3-11,widths=4-20-5,block={block},act=softplus,se=residual")
    macro = wrn.resolve_macro(size)
    with torch.device("meta"):
        model = models.build(wrn, g, macro)
    assert sizing.num_params(wrn, g, macro) == count_params(model)
    assert sizing.flops(wrn, g, macro) == count_flops(model)


def test_proxy_is_smaller_and_runs(wrn: MacroSpace) -> None:
    import torch

    g = wrn.parse("depths=11-2-3,widths=20-4-7,block=robust,act=relu,se=standard")
    tiny = wrn.resolve_macro("tiny")
    assert sizing.num_params(wrn, g, tiny) < sizing.num_params(wrn, g) / 20
    assert builder.macro_config(wrn, g, tiny).depths == (2, 1, 1)
    out = models.build(wrn, g, tiny)(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_budget_below_the_smallest_network_refused(wrn: MacroSpace) -> None:
    smallest = sizing.min_params(wrn)
    assert smallest == min(sizing.num_params(wrn, g) for g in wrn.smallest())
    with pytest.raises(BudgetError):
        make_budget_predicate(wrn, smallest - 1, wrn.resolve_macro())


@pytest.mark.parametrize(
    "strategy", ["random", "regularized_evolution", "local_search", "tpe", "nsga2"]
)
def test_every_strategy_respects_the_budget_at_the_deployed_size(
    wrn: MacroSpace, strategy: str
) -> None:
    """A toy evaluator (deeper is better); every proposal fits 20M parameters at the deployed size."""
    budget = 20_000_000
    deployed = wrn.resolve_macro()
    feasible = make_budget_predicate(wrn, budget, deployed)
    kw = {"population_size": 6, "sample_size": 3} if strategy == "regularized_evolution" else {}
    if strategy == "local_search":
        kw = {"num_init": 3}
    s = make_strategy(
        strategy,
        wrn,
        seed=0,
        objective="score",
        feasible=feasible,
        **kw,  # type: ignore[arg-type]
    )
    asked = []
    for _ in range(25):
        g = s.ask()
        n = sizing.num_params(wrn, g, deployed)
        assert n <= budget
        asked.append(g.to_str())
        score = sum(g.depths) / 33.0  # type: ignore[attr-defined]
        s.tell(g, Result({"score": score}, n))
    assert len(set(asked)) == len(asked)
    # the budget binds: some networks of the grid are larger, and the search avoided them
    assert (
        sizing.num_params(
            wrn, wrn.parse("depths=11-11-11,widths=20-20-20,block=preact,act=relu,se=none")
        )
        > budget
    )


def test_arch_info_reads_macro_genotypes(capsys: pytest.CaptureFixture[str]) -> None:
    from robnas.cli import main

    assert main(["arch", "info", TEXT, "--json"]) == 0
    import json

    info = json.loads(capsys.readouterr().out)
    assert info["genotype"] == TEXT and info["num_params"] == sizing.num_params(
        get_space("wrn"), Genotype.from_str(TEXT)
    )


def test_spaces_command_lists_wrn(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from robnas.cli import main

    assert main(["spaces", "--json"]) == 0
    rows = {r["space"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["wrn"]["cells"] == get_space("wrn").size and rows["wrn"]["edge"] == "macro"
    assert any(text.startswith("block basic/preact") for text in rows["wrn"]["ops"])
