"""The search's time estimate: one line after the first minute of supernet steps, from the
measured rate and the relative costs of the rest of the job."""

from __future__ import annotations

import pytest

from robnas.config import get_preset
from robnas.estimate import Costs, SearchEstimate, candidate_scale, search_estimate
from robnas.search.pipeline import resolve_settings
from robnas.search.request import SearchRequest
from robnas.specs import Budget
from robnas.training.loop import Progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _feed(est: SearchEstimate, clock: FakeClock, steps: int, seconds_per_step: float) -> None:
    """Reports as the training loop sends them: step 1, then every 10 steps."""
    est(Progress("epoch_start", 1, 1, 0, steps))
    for i in range(steps):
        clock.now += seconds_per_step
        if i % 10 == 0 or i + 1 == steps:
            est(Progress("step", 1, 1, i + 1, steps, loss=1.0))


def test_one_line_with_the_rate_of_the_first_minute() -> None:
    clock = FakeClock()
    lines: list[str] = []
    seen: list[str] = []
    costs = Costs(adv_over_clean=2.0, dense_extra=0.0, validation_steps=100, candidate_steps=50)
    est = SearchEstimate(
        clean_fraction=0.5,
        dense_fraction=0.0,
        trials=4,
        costs=costs,
        preset="tiny",
        emit=lines.append,
        then=lambda r: seen.append(r.kind),
        clock=clock,
    )
    clock.now = 30.0  # data loading before the first step counts in the total
    _feed(est, clock, 1000, 0.5)  # clean steps at 0.5 s: the estimate comes at step 121
    assert len(lines) == 1 and est.minutes is not None
    # 1000 steps: 500 clean (1 unit) + 500 adversarial (2 units) = 1500 units at 0.5 s,
    # + validation 100 + 4 candidates x 50 = 300 units; + the 30 s before training
    assert est.minutes * 60 == pytest.approx(30 + 0.5 * (1500 + 300), rel=1e-6)
    assert (
        lines[0] == f"estimated {est.minutes:.0f} min on this machine (the tiny preset assumes 8)"
    )
    assert seen.count("step") == 101 and seen[0] == "epoch_start"  # the bar sees every report


def test_dense_paths_cost_more_at_the_start() -> None:
    costs = Costs(adv_over_clean=1.0, dense_extra=0.5, validation_steps=0, candidate_steps=0)
    est = SearchEstimate(clean_fraction=1.0, dense_fraction=0.5, trials=0, costs=costs, emit=print)
    assert est.unit(0, 100) == pytest.approx(1.5)  # every op on: p = 1
    assert est.unit(25, 100) == pytest.approx(1.25)
    assert est.unit(50, 100) == est.unit(99, 100) == pytest.approx(1.0)  # uniform: p = 1/2


def test_nothing_is_said_before_a_minute_of_steps() -> None:
    clock = FakeClock()
    lines: list[str] = []
    est = SearchEstimate(
        clean_fraction=0.3, dense_fraction=0.5, trials=10, emit=lines.append, clock=clock
    )
    _feed(est, clock, 100, 0.5)  # 50 s in all
    assert lines == [] and est.minutes is None


def test_settings_of_the_main_job() -> None:
    settings = resolve_settings(SearchRequest(budget=Budget.parse("5M"), preset=get_preset("tiny")))
    est = search_estimate(settings, emit=print)
    assert est.clean_fraction == pytest.approx(0.3)
    assert est.dense_fraction == 0.5 and est.trials == 10
    assert est.candidate_scale == pytest.approx(1.0) and est.preset == "tiny"
    more = resolve_settings(
        SearchRequest(budget=Budget.parse("5M"), preset=get_preset("tiny"), attack_steps=40)
    )
    assert search_estimate(more, emit=print).candidate_scale > 1.5
    assert candidate_scale(500, 1, 250, 20) == pytest.approx(1.0)


def test_the_constants_follow_the_thread_count(monkeypatch) -> None:
    # with two threads a candidate gains less than a supernet step: its share of the job grows
    from robnas import estimate

    one, two = estimate.costs_for(1), estimate.costs_for(2)
    assert two.candidate_steps > one.candidate_steps
    assert estimate.costs_for(8) == two and estimate.costs_for(0) == one
    settings = resolve_settings(SearchRequest(budget=Budget.parse("5M"), preset=get_preset("tiny")))
    for threads, expected in ((1, one), (2, two)):
        monkeypatch.setattr(estimate.torch, "get_num_threads", lambda t=threads: t)
        assert search_estimate(settings, emit=print).costs == expected
