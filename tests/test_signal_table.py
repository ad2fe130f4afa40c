"""TableSignals: per-cell signal tables joined by isomorphism class, charged their recorded cost."""

from __future__ import annotations

import pytest
from experiment_helpers import one_string_per_class
from search_helpers import ToyEvaluator, toy_space

from robnas.errors import ConfigError
from robnas.genotype import Genotype
from robnas.space.search_space import get_space
from robnas.strategies import make_strategy
from robnas.strategies.signal_table import TableSignals

# node 1 feeds nothing (both its out-edges are `none`), so its op does not matter: one class
DEAD_NODE = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
DEAD_NODE_ISOMORPH = (
    "|nor_conv_1x1~0|+|nor_conv_1x1~0|none~1|+|skip_connect~0|none~1|avg_pool_3x3~2|"
)
OTHER = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"


def write(path, header, rows):
    path.write_text(",".join(header) + "\n" + "".join(",".join(r) + "\n" for r in rows))
    return path


def test_tables_join_by_class_and_charge_the_sum_of_their_seconds(tmp_path) -> None:
    space = get_space("nb201")
    jac = write(
        tmp_path / "jac.csv",
        ["arch", "jac_norm", "params", "seconds"],
        [[DEAD_NODE, "0.5", "100", "0.25"], [OTHER, "0.125", "200", "0.5"]],
    )
    naswot = write(
        tmp_path / "naswot.csv",
        ["arch", "naswot", "params", "seconds"],
        [[DEAD_NODE, "1400", "100", "1.0"], [OTHER, "1500", "200", "2.0"]],
    )
    signals = TableSignals(space, [jac, naswot])
    assert signals.names == ("jac_norm", "naswot")
    isomorph = Genotype.from_str(f"nb201:{DEAD_NODE_ISOMORPH}")
    assert signals(isomorph) == {"jac_norm": 0.5, "naswot": 1400.0}
    assert signals.recorded_seconds(isomorph) == 1.25
    assert signals(Genotype.from_str(f"nb201:{OTHER}")) == {"jac_norm": 0.125, "naswot": 1500.0}
    only = TableSignals(space, [jac, naswot], columns=["naswot"])
    assert only.names == ("naswot",) and only(isomorph) == {"naswot": 1400.0}
    assert only.recorded_seconds(isomorph) == 1.0  # the jac_norm table's cost is not charged


def test_bad_tables_and_missing_cells_are_refused(tmp_path) -> None:
    space = get_space("nb201")
    good = write(tmp_path / "good.csv", ["arch", "jac_norm", "seconds"], [[DEAD_NODE, "1", "1"]])
    with pytest.raises(ConfigError, match="no full row"):
        TableSignals(space, [good])(Genotype.from_str(f"nb201:{OTHER}"))
    untimed = write(tmp_path / "untimed.csv", ["arch", "jac_norm"], [[DEAD_NODE, "1"]])
    with pytest.raises(ConfigError, match="`seconds`"):
        TableSignals(space, [untimed])
    twice = write(
        tmp_path / "twice.csv",
        ["arch", "jac_norm", "seconds"],
        [[DEAD_NODE, "1", "1"], [DEAD_NODE_ISOMORPH, "2", "1"]],
    )
    with pytest.raises(ConfigError, match="twice"):
        TableSignals(space, [twice])
    with pytest.raises(ConfigError, match="zico"):
        TableSignals(space, [good], columns=["zico"])
    with pytest.raises(ConfigError, match="same signal"):
        TableSignals(space, [good, good])
    with pytest.raises(ConfigError, match="no signal table"):
        TableSignals(space, [tmp_path / "absent.csv"])
    # a cell the second table lacks has no full row
    other = write(tmp_path / "other.csv", ["arch", "naswot", "seconds"], [[OTHER, "1", "1"]])
    with pytest.raises(ConfigError, match="no full row"):
        TableSignals(space, [good, other])(Genotype.from_str(f"nb201:{DEAD_NODE}"))


def test_the_predictor_charges_looked_up_signals_their_recorded_seconds(tmp_path) -> None:
    """A lookup takes microseconds; the run is charged what computing the signals took."""
    toy = toy_space(tmp_path)
    ops = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3"]  # the toy space's
    strings = one_string_per_class(toy, ops)
    rows = [[text, str(i % 7), f"{0.5 + (i % 3) / 4}"] for i, text in enumerate(strings)]
    signals = TableSignals(toy, [write(tmp_path / "toy.csv", ["arch", "sig", "seconds"], rows)])
    strategy = make_strategy(
        "predictor", toy, seed=0, objective="score", num_init=4, signals=signals
    )
    evaluator = ToyEvaluator(toy)
    for _ in range(12):
        g = strategy.ask()
        strategy.tell(g, evaluator.evaluate(g))
    computed = [Genotype.from_str(k) for k in strategy._signal_values]
    assert strategy.cheap_evaluations == len(computed) > 12
    assert strategy.cheap_seconds == pytest.approx(
        sum(signals.recorded_seconds(g) for g in computed)
    )
