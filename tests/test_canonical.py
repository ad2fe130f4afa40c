"""Canonical forms: the NB201 dataset's isomorph classes; DARTS cells invariant under relabelling."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from data_helpers import needs

from robnas.genotype import Genotype
from robnas.models import sizing
from robnas.space.canonical import relabel
from robnas.space.search_space import get_space


@needs("nb201-robustness")
def test_nb201_form_reproduces_the_datasets_isomorph_classes(data_root: Path) -> None:
    from robnas.data.tabular import load_benchmark

    root = data_root / "nb201-robustness"
    bench = load_benchmark(root)
    meta = json.loads((root / "meta.json").read_text())
    space = get_space("nb201")
    rows: dict[str, set[int]] = {}
    for entry in meta["ids"].values():
        g = Genotype.from_str(entry["nb201-string"], "nb201")
        rows.setdefault(space.canonical(g), set()).add(bench.row_of(g))
    assert len(rows) == bench.num_unique == 6466
    assert all(len(r) == 1 for r in rows.values())


def test_nb201_form_is_to_unique_str() -> None:
    space = get_space("nb201")
    g = space.parse("|nor_conv_3x3~0|+|skip_connect~0|none~1|+|none~0|avg_pool_3x3~1|none~2|")
    assert space.canonical(g) == "#+#+((0)@nor_conv_3x3)@avg_pool_3x3"


def sparse_darts(rng: np.random.Generator, space, p_edge: float = 0.3) -> Genotype:
    """A random DARTS cell with few edges (so several node orders are valid)."""
    edges = [
        space.edge_choices[int(rng.integers(1, len(space.edge_choices)))]
        if rng.random() < p_edge
        else frozenset()
        for _ in range(space.num_edges)
    ]
    return Genotype(space.name, (space.cell_from_edges(edges),))


def relabellings(space, g: Genotype) -> list[Genotype]:
    out = []
    for order in itertools.permutations(range(space.nodes)):
        cell = relabel(g.cells[0], space.inputs, order)
        if cell is not None:
            out.append(Genotype(space.name, (cell,)))
    return out


def test_darts_form_is_invariant_under_node_relabelling() -> None:
    space = get_space("darts")
    rng = np.random.default_rng(0)
    nontrivial = 0
    for _ in range(300):
        g = sparse_darts(rng, space)
        others = relabellings(space, g)
        nontrivial += sum(o != g for o in others)
        assert {space.canonical(o) for o in others} == {space.canonical(g)}
        assert len({space.canonical_key(o) for o in others}) == 1
    assert nontrivial > 100  # the check saw many genuinely different strings


def test_darts_relabelled_cell_is_the_same_network() -> None:
    space = get_space("darts")
    macro = space.resolve_macro("tiny")
    a = space.parse(
        "|sep_conv_3x3~0|none~1|+|none~0|skip_connect~1|none~2|+"
        "|none~0|none~1|sep_conv_3x3~2|none~3|+|none~0|none~1|none~2|skip_connect~3|none~4|"
    )
    b = Genotype(space.name, (relabel(a.cells[0], space.inputs, (1, 0, 3, 2)),))  # type: ignore[arg-type]
    assert a != b and space.canonical(a) == space.canonical(b)
    assert sizing.num_params(space, a, macro) == sizing.num_params(space, b, macro)


def test_darts_distinct_classes_stay_distinct() -> None:
    space = get_space("darts")
    base = (
        "|sep_conv_3x3~0|none~1|+|none~0|skip_connect~1|none~2|+"
        "|none~0|none~1|none~2|none~3|+|none~0|none~1|none~2|none~3|none~4|"
    )
    g = space.parse(base)
    # other op, other input (the two inputs are not interchangeable), an extra edge
    others = [
        base.replace("sep_conv_3x3~0", "skip_connect~0"),
        base.replace("sep_conv_3x3~0|none~1", "none~0|sep_conv_3x3~1"),
        base.replace("|none~0|none~1|none~2|none~3|+", "|none~0|none~1|sep_conv_3x3~2|none~3|+", 1),
    ]
    forms = {space.canonical(g)} | {space.canonical(space.parse(o)) for o in others}
    assert len(forms) == 4
    # genotypes in one class are relabellings of each other (after dead edges are dropped)
    rng = np.random.default_rng(1)
    by_form: dict[str, set[Genotype]] = {}
    for _ in range(3000):
        h = sparse_darts(rng, space, p_edge=0.25)
        by_form.setdefault(space.canonical(h), set()).add(h)
    from robnas.space.canonical import drop_dead_edges

    def live(h: Genotype) -> Genotype:
        return Genotype(space.name, (drop_dead_edges(h.cells[0], space.inputs),))

    merged = 0
    for members in by_form.values():
        orbit = set(relabellings(space, live(next(iter(members)))))
        assert all(live(m) in orbit for m in members)
        merged += len(members) - 1
    assert merged > 50  # classes with several members were checked


def test_darts_edges_out_of_zero_nodes_are_dead() -> None:
    space = get_space("darts")
    # node 0 has no input: its outgoing sep_conv carries zeros
    a = space.parse(
        "|none~0|none~1|+|none~0|skip_connect~1|sep_conv_3x3~2|+"
        "|none~0|none~1|none~2|none~3|+|none~0|none~1|none~2|none~3|none~4|"
    )
    b = space.parse(
        "|none~0|none~1|+|none~0|skip_connect~1|none~2|+"
        "|none~0|none~1|none~2|none~3|+|none~0|none~1|none~2|none~3|none~4|"
    )
    assert space.canonical(a) == space.canonical(b)


@pytest.mark.parametrize("name", ["nb201", "darts"])
def test_free_genotypes_are_canonicalized_per_cell(name: str) -> None:
    space = get_space(name)
    rng = np.random.default_rng(2)
    g = space.sample(rng, free=True, macro=space.resolve_macro("tiny"))
    form = space.canonical(g)
    assert form.count(";") == len(g.cells) - 1
