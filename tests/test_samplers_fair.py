"""Strictly fair and class-uniform path samplers."""

from __future__ import annotations

from collections import Counter

import pytest

from robnas.errors import ConfigError
from robnas.models.samplers import FairOpSampler, UniformClassSampler, make_sampler
from robnas.space.search_space import get_space


@pytest.mark.parametrize("space_name", ["nb201", "darts"])
def test_fair_op_trains_every_edge_op_equally_in_every_window(space_name: str) -> None:
    space = get_space(space_name)
    sampler = FairOpSampler(space, seed=0)
    window = len(space.edge_choices) if space.edge_kind == "choice" else 2
    for _ in range(3):
        counts: Counter[tuple[int, str]] = Counter()
        for _ in range(window):
            g = sampler.sample()
            space.validate(g)
            for e, edge in enumerate(edge for node in g.cells[0] for edge in node):
                for op in space.ops:
                    counts[(e, op)] += op in edge
        per = {c for c in counts.values()}
        want = 1  # choice: each op once per K steps; subset: each bit on once per 2 steps
        assert per == {want}, per


def test_fair_op_resumes_mid_window() -> None:
    space = get_space("nb201")
    a = FairOpSampler(space, seed=3)
    a.sample(), a.sample()
    state = a.state_dict()
    b = FairOpSampler(space, seed=99)
    b.load_state_dict(state)
    assert [a.sample() for _ in range(7)] == [b.sample() for _ in range(7)]


def test_uniform_class_draws_classes_not_strings() -> None:
    space = get_space("nb201")
    sampler = make_sampler("uniform_class", space, seed=0)
    assert len(sampler.classes) == 6466  # the robustness dataset's isomorph classes
    draws = Counter(space.canonical_key(sampler.sample()) for _ in range(20000))
    # under uniform op sampling the biggest class would take far more than its 1/6466 share
    biggest = max(sampler.classes, key=len)
    assert len(biggest) > 50
    assert draws[space.canonical_key(biggest[0])] < 15  # expected 3.1 of 20,000 draws


def test_uniform_class_refuses_a_space_it_cannot_enumerate() -> None:
    with pytest.raises(ConfigError, match="enumerates"):
        UniformClassSampler(get_space("darts"), seed=0)
