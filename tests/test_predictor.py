"""Cell features (hand-checked values on NB201 and darts cells) and the predictor strategy's own
behaviour: its tree ensemble, acquisitions, cheap signals counted and timed, darts cell-free pools.

The registry-wide strategy tests (determinism, budget, state round trip, one query per
isomorphism class, better than random) run on the predictor too (tests/test_strategies.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from search_helpers import ToyEvaluator, toy_space

from robnas.errors import ConfigError
from robnas.models import sizing
from robnas.result import Result
from robnas.space.search_space import get_space
from robnas.strategies import make_budget_predicate, make_strategy
from robnas.strategies.features import CellFeatures, op_subsets
from robnas.strategies.predictor import Predictor, TreeEnsemble

NB201_BEST = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
)
# darts (2 inputs, concat output), nodes numbered inputs first: 0->2 {skip, sep}, 1->3 {sep},
# 2->3 {skip}, 3->5 {sep}; node 4 has no input
DARTS_CELL = (
    "|skip_connect~0|sep_conv_3x3~0|none~1|"
    "+|none~0|sep_conv_3x3~1|skip_connect~2|"
    "+|none~0|none~1|none~2|none~3|"
    "+|none~0|none~1|none~2|sep_conv_3x3~3|none~4|"
)


def named(features: CellFeatures, values: np.ndarray) -> dict[str, float]:
    return dict(zip(features.names, values.tolist(), strict=True))


def run_asks(strategy: Predictor, evaluator: ToyEvaluator, asks: int) -> list[str]:
    out = []
    for _ in range(asks):
        g = strategy.ask()
        out.append(g.to_str())
        strategy.tell(g, evaluator.evaluate(g))
    return out


def test_nb201_features_of_the_fgsm_optimum_by_hand() -> None:
    space = get_space("nb201")
    macro = space.resolve_macro("paper")
    features = CellFeatures(space, macro=macro)
    genotype = space.parse(NB201_BEST)
    f = named(features, features(genotype))
    assert len(op_subsets(space.ops)) == 15
    assert f["count_nor_conv_3x3"] == 4 and f["count_skip_connect"] == 1
    assert f["count_none"] == 1 and f["count_avg_pool_3x3"] == 0
    # conv3x3 paths to the output: 0-1-2-3 and 0-2-3
    assert f["paths[nor_conv_3x3]"] == 2
    assert (f["min_len[nor_conv_3x3]"], f["max_len[nor_conv_3x3]"]) == (2, 3)
    assert (f["out_in[nor_conv_3x3]"], f["in_out[nor_conv_3x3]"]) == (2, 1)
    assert f["paths[skip_connect+nor_conv_3x3]"] == 3
    assert f["paths[avg_pool_3x3]"] == 0 and f["max_len[avg_pool_3x3]"] == 0
    assert f["max_on_path_nor_conv_3x3"] == 3 and f["max_on_path_skip_connect"] == 1
    assert (f["depth"], f["width"]) == (3, 1)
    assert f["mean_in_degree"] == pytest.approx(5 / 3)
    assert f["mean_out_degree"] == pytest.approx(2 / 3)
    assert f["num_params"] == sizing.num_params(space, genotype, macro)
    assert f["flops"] > 0


def test_darts_features_handle_two_inputs_subset_edges_and_concat() -> None:
    space = get_space("darts")
    features = CellFeatures(space)  # no macro: graph statistics only
    f = named(features, features(space.parse(DARTS_CELL)))
    assert "num_params" not in f
    assert (f["count_skip_connect"], f["count_sep_conv_3x3"], f["count_none"]) == (2, 3, 10)
    both = "skip_connect+sep_conv_3x3"
    # the edge with both ops counts twice: 2 paths to node 2, 1 + 2 to node 3, 3 to node 5
    assert f[f"paths[{both}]"] == 8
    assert (f[f"min_len[{both}]"], f[f"max_len[{both}]"]) == (1, 3)
    assert (f[f"out_in[{both}]"], f[f"in_out[{both}]"]) == (2, 3)
    assert f["paths[skip_connect]"] == 2 and f["in_out[skip_connect]"] == 2
    assert f["paths[sep_conv_3x3]"] == 3 and f["out_in[sep_conv_3x3]"] == 2
    assert f["max_on_path_skip_connect"] == 2 and f["max_on_path_sep_conv_3x3"] == 2
    assert (f["depth"], f["width"]) == (3, 1)
    assert f["mean_in_degree"] == pytest.approx(4 / 3)
    assert f["mean_out_degree"] == pytest.approx(2 / 3)


def test_cell_free_genotypes_average_their_cells() -> None:
    space = get_space("darts")
    macro = space.resolve_macro("tiny")
    features = CellFeatures(space, onehot=True)
    rng = np.random.default_rng(0)
    free = space.sample(rng, free=True, macro=macro)
    parts = [features(space.parse(";".join([c] * 1))) for c in free.to_str()[6:].split(";")]
    assert np.allclose(features(free), np.mean(parts, axis=0))
    assert len(features(free)) == len(features.names)


def test_empty_cell_has_zero_graph_statistics() -> None:
    space = get_space("nb201")
    features = CellFeatures(space)
    f = named(features, features(space.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")))
    assert f["count_none"] == 6
    assert all(v == 0 for k, v in f.items() if k != "count_none")


def test_tree_ensemble_interpolates_its_training_set_and_spreads_elsewhere() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5))
    y = x[:, 0] * 2 + np.sin(x[:, 1])
    model = TreeEnsemble(trees=20, max_features=1.0, seed=3).fit(x, y)
    mean, spread = model.predict(x)
    assert np.allclose(mean, y) and np.allclose(spread, 0)  # fully grown trees, whole sample
    far_mean, far_spread = model.predict(rng.normal(size=(40, 5)) * 3)
    assert far_spread.mean() > 0.1
    again = TreeEnsemble(trees=20, max_features=1.0, seed=3).fit(x, y)
    probe = rng.normal(size=(10, 5))
    assert np.array_equal(model.members(probe), again.members(probe))


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory):
    return toy_space(tmp_path_factory.mktemp("space"))


@pytest.mark.parametrize("acquisition", ["ucb", "ei", "thompson"])
def test_every_acquisition_searches(acquisition: str, toy) -> None:
    evaluator = ToyEvaluator(toy)
    strategy = make_strategy(
        "predictor", toy, seed=0, objective="score", acquisition=acquisition, num_init=5
    )
    seen = set()
    for _ in range(25):
        g = strategy.ask()
        assert g.to_str() not in seen
        seen.add(g.to_str())
        strategy.tell(g, evaluator.evaluate(g))
    best = max(evaluator.score(toy.parse(k)) for k in seen)
    assert best > np.quantile(
        [evaluator.score(toy.sample(np.random.default_rng(i))) for i in range(400)], 0.95
    )


def test_unknown_acquisition_is_refused(toy) -> None:
    with pytest.raises(ConfigError, match="ucb, ei, thompson"):
        make_strategy("predictor", toy, seed=0, objective="score", acquisition="pi")


def test_signals_are_cheap_evaluations_counted_timed_and_restored(toy) -> None:
    calls: list[str] = []

    def signals(g):
        calls.append(g.to_str())
        return {"density": toy.density(g), "edges": toy.edge_density(g)}

    evaluator = ToyEvaluator(toy)

    a = make_strategy(
        "predictor",
        toy,
        seed=2,
        objective="score",
        num_init=4,
        signals=signals,
        signal_shortlist=3,
    )
    run_asks(a, evaluator, 10)
    # every distinct genotype whose signals were computed is one cheap evaluation, none hidden
    assert a.cheap_evaluations == len(calls) == len(set(calls))
    assert a.cheap_seconds > 0
    # the told cells (10) plus the shortlists of the 6 model-picked asks, less overlaps
    assert 10 < a.cheap_evaluations <= 10 + 6 * 3
    state = json.loads(json.dumps(a.state_dict()))
    b = make_strategy(
        "predictor",
        toy,
        seed=2,
        objective="score",
        num_init=4,
        signals=signals,
        signal_shortlist=3,
    )
    b.load_state_dict(state)
    assert b.cheap_evaluations == a.cheap_evaluations
    before = len(calls)
    assert run_asks(a, evaluator, 3) == run_asks(b, evaluator, 3)
    assert a.cheap_evaluations == b.cheap_evaluations
    assert len(calls) - before == 2 * (a.cheap_evaluations - state["cheap_evaluations"])


def test_signals_must_name_the_same_values(toy) -> None:
    names = iter([{"a": 1.0}] * 4 + [{"b": 1.0}] * 100)
    strategy = make_strategy(
        "predictor", toy, seed=0, objective="score", num_init=4, signals=lambda g: next(names)
    )
    evaluator = ToyEvaluator(toy)
    with pytest.raises(ConfigError, match="same names"):
        for _ in range(8):
            g = strategy.ask()
            strategy.tell(g, evaluator.evaluate(g))


def test_darts_free_cells_under_a_budget() -> None:
    space = get_space("darts")
    macro = space.resolve_macro("tiny")
    counts = sorted(
        sizing.num_params(
            space, space.sample(np.random.default_rng(i), free=True, macro=macro), macro
        )
        for i in range(50)
    )
    feasible = make_budget_predicate(space, counts[25], macro)
    strategy = make_strategy(
        "predictor",
        space,
        seed=0,
        objective="score",
        free=True,
        macro=macro,
        num_init=4,
        feasible=feasible,
        pool_size=60,
        feature_macro=macro,
    )
    for _ in range(8):
        g = strategy.ask()
        assert len(g.cells) == space.num_layers(macro) and feasible(g)
        strategy.tell(
            g, Result({"score": space.density(g)}, sizing.num_params(space, g, macro), 0.0)
        )


def test_fewest_and_most_of_an_op_on_a_path() -> None:
    space = get_space("nb201")
    features = CellFeatures(space)
    # pgd@1's best cell: every path starts with the pooling; 0-1-3 has no skip, 0-1-2-3 two
    pooled = "|avg_pool_3x3~0|+|none~0|skip_connect~1|+|none~0|nor_conv_1x1~1|skip_connect~2|"
    f = named(features, features(space.parse(pooled)))
    assert (f["min_on_path_avg_pool_3x3"], f["max_on_path_avg_pool_3x3"]) == (1, 1)
    assert (f["min_on_path_skip_connect"], f["max_on_path_skip_connect"]) == (0, 2)
    assert (f["min_on_path_nor_conv_1x1"], f["max_on_path_nor_conv_1x1"]) == (0, 1)
    best = named(features, features(space.parse(NB201_BEST)))
    assert best["min_on_path_nor_conv_3x3"] == 0  # the skip edge 0-3 is a path without one


def test_evaluator_signals_read_the_metrics_and_refuse_failures(toy) -> None:
    from robnas.strategies.predictor import evaluator_signals

    class Indicators:
        def evaluate(self, g):
            status = "failed" if toy.density(g) == 0 else "ok"
            return Result({"naswot": toy.density(g), "zico": 2.0}, 0, 0.0, status=status)

    signals = evaluator_signals(Indicators(), ["naswot"])
    g = toy.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")
    assert signals(g) == {"naswot": toy.density(g)}
    assert set(evaluator_signals(Indicators())(g)) == {"naswot", "zico"}
    with pytest.raises(ConfigError, match="gave no jac_norm"):
        evaluator_signals(Indicators(), ["jac_norm"])(g)
    with pytest.raises(ConfigError, match="failed"):
        signals(toy.parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"))


def test_a_stalled_climb_restarts_and_resumes_identically(toy) -> None:
    evaluator = ToyEvaluator(toy)

    a = make_strategy("predictor", toy, seed=4, objective="score", num_init=4, patience=3)
    run_asks(a, evaluator, 30)
    assert a.restarts >= 1
    # a climb holds only the cells told since its restart
    assert len(a.climb) < 30 and a.climb_best == max(a.scores[k] for k in a.climb)
    b = make_strategy("predictor", toy, seed=4, objective="score", num_init=4, patience=3)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    assert run_asks(a, evaluator, 6) == run_asks(b, evaluator, 6)
    assert (a.restarts, a.climb) == (b.restarts, b.climb)
    never = make_strategy("predictor", toy, seed=4, objective="score", num_init=4)
    run_asks(never, evaluator, 30)
    assert never.restarts == 0 and never.climb == []
    with pytest.raises(ValueError, match="patience"):
        make_strategy("predictor", toy, seed=0, objective="score", patience=0)


def test_every_fifth_ask_is_a_random_cell_the_model_did_not_pick(toy) -> None:
    evaluator = ToyEvaluator(toy)

    def model_asks(strategy: Predictor, asks: int) -> list[int]:
        """The told counts at which the model ranked candidates (asks it picked)."""
        seen: list[int] = []
        acquire = strategy._acquire

        def spy(*args):
            seen.append(strategy.num_told)
            return acquire(*args)

        strategy._acquire = spy  # type: ignore[method-assign]
        for _ in range(asks):
            g = strategy.ask()
            strategy.tell(g, evaluator.evaluate(g))
        return seen

    default = make_strategy("predictor", toy, seed=1, objective="score", num_init=4)
    assert default.random_every == 5
    # the model picks every ask after the first 4 cells but those at 5, 10, 15 and 20 told
    assert model_asks(default, 24) == [t for t in range(4, 24) if t % 5]
    never = make_strategy(
        "predictor", toy, seed=1, objective="score", num_init=4, random_every=None
    )
    assert model_asks(never, 12) == list(range(4, 12))
    with pytest.raises(ValueError, match="random_every"):
        make_strategy("predictor", toy, seed=0, objective="score", random_every=0)


def test_a_stalled_search_polishes_the_incumbent_by_the_mean(toy) -> None:
    """Once the best has not improved for `stall` tells, the model's asks are the incumbent's
    one-edge neighbours of unseen classes, the ensemble's mean's best first (not one Thompson
    tree), at most `polish` per incumbent; then Thompson over the pool again."""
    evaluator = ToyEvaluator(toy, seed=3)
    strategy = make_strategy(
        "predictor", toy, seed=2, objective="score", num_init=4, random_every=None, polish=3
    )
    assert strategy.stall == 5  # on by default
    picks: list[tuple[str, np.ndarray, list]] = []
    acquire = strategy._acquire

    def spy(model, x, best, acquisition):
        gain = acquire(model, x, best, acquisition)
        picks.append((acquisition, model.predict(x)[0], gain))
        return gain

    strategy._acquire = spy  # type: ignore[method-assign]
    polished = 0
    for _ in range(60):
        stalled = len(strategy.scores) >= 4 and strategy.num_told - strategy.best_at >= 5
        incumbent = max(strategy.scores, key=lambda k: strategy.scores[k], default=None)
        budget_left = strategy.polished_incumbent < 3
        before = len(picks)
        g = strategy.ask()
        if stalled and budget_left and len(picks) > before:
            polished += 1
            acquisition, mean, gain = picks[-1]
            assert acquisition == "mean" and np.array_equal(gain, mean)
            assert g.to_str() in {n.to_str() for n in toy.neighbours(toy.parse(incumbent))}
        elif len(picks) > before:
            assert picks[-1][0] == "thompson"
        strategy.tell(g, evaluator.evaluate(g))
    assert polished > 3 and strategy.polished == polished
    plain = make_strategy(
        "predictor", toy, seed=2, objective="score", num_init=4, random_every=None, stall=None
    )
    run_asks(plain, evaluator, 40)
    assert plain.polished == 0
    with pytest.raises(ValueError, match="stall"):
        make_strategy("predictor", toy, seed=0, objective="score", stall=0)
    with pytest.raises(ValueError, match="polish"):
        make_strategy("predictor", toy, seed=0, objective="score", polish=0)


def test_polishing_stops_after_polish_asks_per_incumbent(toy) -> None:
    """A flat objective never improves on the first best: the search polishes that incumbent
    exactly `polish` times and never again."""
    strategy = make_strategy(
        "predictor", toy, seed=0, objective="score", num_init=4, random_every=None, polish=4
    )
    for _ in range(30):
        g = strategy.ask()
        strategy.tell(g, Result({"score": 0.0}, 0, 0.0))
    assert strategy.polished == strategy.polished_incumbent == 4


def test_polishing_resumes_identically(toy) -> None:
    evaluator = ToyEvaluator(toy, seed=3)
    options = {"num_init": 4, "stall": 2, "polish": 3}
    a = make_strategy("predictor", toy, seed=5, objective="score", **options)
    run_asks(a, evaluator, 25)
    assert a.polished > 0 and a.best_score == max(a.scores.values())
    b = make_strategy("predictor", toy, seed=5, objective="score", **options)
    b.load_state_dict(json.loads(json.dumps(a.state_dict())))
    state = (a.best_score, a.best_at, a.polished, a.polished_incumbent)
    assert (b.best_score, b.best_at, b.polished, b.polished_incumbent) == state
    assert run_asks(a, evaluator, 10) == run_asks(b, evaluator, 10)
    assert (a.polished, a.polished_incumbent) == (b.polished, b.polished_incumbent)


def test_a_state_saved_before_polishing_existed_still_loads(toy) -> None:
    evaluator = ToyEvaluator(toy, seed=3)
    a = make_strategy("predictor", toy, seed=5, objective="score", num_init=4)
    run_asks(a, evaluator, 8)
    state = json.loads(json.dumps(a.state_dict()))
    for key in ("best_score", "best_at", "polished", "polished_incumbent"):
        del state[key]
    b = make_strategy("predictor", toy, seed=5, objective="score", num_init=4)
    b.load_state_dict(state)  # an older study resumes; polishing starts its count afresh
    assert (b.best_score, b.polished) == (-math.inf, 0)
    run_asks(b, evaluator, 5)
    assert b.best_score == max(b.scores.values())


def test_random_cells_are_never_isomorphs_of_seen_ones() -> None:
    space = get_space("nb201")
    strategy = make_strategy("predictor", space, seed=3, objective="score", random_every=1)
    forms = []
    for _ in range(60):  # with random_every=1 every ask is random: 60 random cells
        g = strategy.ask()
        forms.append(space.canonical(g))
        strategy.tell(g, Result({"score": space.density(g)}, 0, 0.0))
    assert len(set(forms)) == 60
