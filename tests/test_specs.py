"""robnas.specs: each command-line value parses its one grammar, prints it, and refuses bad input
with one line that says what to write."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from robnas.errors import BudgetError, ConfigError, RobnasError, UnknownName
from robnas.specs import (
    DEFAULT_EPS,
    AttackSpec,
    Budget,
    DataSpec,
    Eps,
    Objective,
    Size,
    attack_of_metric,
    format_eps,
    size_from,
)

# -- eps -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (8 / 255, "8/255"),
        (1 / 255, "1/255"),
        (0.5 / 255, "0.5/255"),  # the NB201 robustness dataset's eps levels print in 1/255 too
        (0.1 / 255, "0.1/255"),
        (0.03, "0.03"),  # not exactly 7.65/255 in floating point: the decimal
        (1.0, "255/255"),
    ],
)
def test_eps_prints_one_form_that_reads_back_exactly(value: float, text: str) -> None:
    assert format_eps(value) == text == str(Eps(value))
    assert Eps.parse(text) == value  # the same float, to the last bit


def test_eps_is_a_float_and_its_default_is_named_once() -> None:
    assert DEFAULT_EPS == 8 / 255 and isinstance(DEFAULT_EPS, float)
    assert str(DEFAULT_EPS) == "8/255" and repr(DEFAULT_EPS) == "Eps('8/255')"
    assert Eps.of_255(8) == Eps.parse("8/255") and str(Eps.of_255(0.5)) == "0.5/255"
    assert json.dumps({"eps": str(Eps.parse("4/255"))}) == '{"eps": "4/255"}'
    assert Eps.parse("0", allow_zero=True) == 0.0


@pytest.mark.parametrize("text", ["lots", "8/0", "0", "2", "-1/255", "nan"])
def test_bad_eps_is_one_line(text: str) -> None:
    with pytest.raises(ConfigError) as err:
        Eps.parse(text)
    assert "\n" not in str(err.value) and ("8/255" in str(err.value) or "(0, 1]" in str(err.value))


# -- attacks ---------------------------------------------------------------------------------------


def test_attack_spec_owns_its_metric_key() -> None:
    assert AttackSpec().metric == "pgd20_acc" and AttackSpec().eps == DEFAULT_EPS
    assert AttackSpec("pgd", Eps.of_255(4), 10).metric == "pgd10_acc"
    fgsm = AttackSpec("fgsm", Eps.of_255(1), 1)
    assert fgsm.metric == "fgsm_acc" and fgsm.options == {}
    pgd = AttackSpec("pgd", Eps.of_255(8), 7)
    assert pgd.options == {"steps": 7, "alpha": pgd.eps / 4}  # RobNet's 2/255 at 8/255
    assert str(pgd) == "PGD-7 at 8/255" and str(fgsm) == "FGSM at 1/255"
    assert attack_of_metric("pgd3_acc") == "pgd" and attack_of_metric("fgsm_acc") == "fgsm"
    assert attack_of_metric("clean_acc") is None


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"name": "cw"}, UnknownName, "unknown attack 'cw'; known: fgsm, pgd"),
        ({"steps": 0}, ConfigError, "--attack-steps must be at least 1"),
        ({"name": "fgsm", "steps": 5}, ConfigError, "FGSM takes one step"),
    ],
)
def test_bad_attack_specs(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        AttackSpec(**kwargs)


# -- objectives ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("fgsm@1", "fgsm@1"),
        ("FGSM@1.0", "fgsm@1"),
        ("pgd@8/255", "pgd@8"),
        ("aa_apgd-ce@0.5", "aa_apgd-ce@0.5"),
        ("Clean", "clean"),
        ("pgd20_acc", "pgd20_acc"),
        (" fsp_dist ", "fsp_dist"),
    ],
)
def test_objective_spellings(text: str, key: str) -> None:
    assert Objective.parse(text).key == key == str(Objective.parse(text))


@pytest.mark.parametrize("text", ["fgsm@x", "@1", "pgd@-1", "pgd 20", ""])
def test_unreadable_objectives(text: str) -> None:
    with pytest.raises(UnknownName, match="cannot read objective"):
        Objective.parse(text)


def test_an_objective_names_a_dataset_column() -> None:
    assert Objective.parse("fgsm@1").column() == "fgsm@1"
    assert Objective.parse("clean").column() == "clean"
    assert Objective.parse("clean_acc").column() == "clean"  # today's key, the same accuracy
    with pytest.raises(ConfigError, match="measured on trained networks"):
        Objective.parse("pgd20_acc").column()


def test_an_objective_names_what_a_network_search_measures() -> None:
    fgsm = Objective.parse("fgsm@1").network()
    assert (fgsm.metric, fgsm.direction) == ("fgsm_acc", "maximize")
    assert fgsm.attack == AttackSpec("fgsm", Eps.of_255(1), 1)  # FGSM at 1/255
    pgd = Objective.parse("pgd@1").network(steps=10)
    assert pgd.metric == "pgd10_acc" and pgd.attack == AttackSpec("pgd", Eps.of_255(1), 10)
    default = Objective.parse("pgd20_acc").network()  # today's default: PGD-20 at 8/255
    assert default.attack == AttackSpec() and default.metric == "pgd20_acc"
    clean = Objective.parse("clean").network(eps=Eps.of_255(4), steps=5)
    assert clean.metric == "clean_acc" and clean.attack == AttackSpec("pgd", Eps.of_255(4), 5)
    fsp = Objective.parse("fsp_dist").network()
    assert fsp.direction == "minimize" and fsp.attack == AttackSpec()


@pytest.mark.parametrize(
    ("text", "kwargs", "message"),
    [
        ("fog@3", {}, "a column of the NB201 robustness dataset"),
        ("pgd@8", {"eps": Eps.of_255(4)}, "names its eps; drop --eps"),
        ("fgsm@1", {"steps": 3}, "FGSM takes one step"),
        ("pgd20_acc", {"steps": 10}, "--attack-steps 10 measures pgd10_acc"),
        ("nope", {}, "unknown objective 'nope'; known: clean, fgsm@<eps>, pgd@<eps>, pgd20_acc"),
    ],
)
def test_network_objectives_refused_with_one_line(text: str, kwargs: dict, message: str) -> None:
    with pytest.raises(RobnasError) as err:
        Objective.parse(text).network(**kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


# -- sizes, budgets, data --------------------------------------------------------------------------


def test_size_forms() -> None:
    assert Size.parse("tiny") == Size("tiny")
    assert Size.parse("C=16,layers=8") == Size(None, (("C", 16), ("layers", 8)))
    assert Size.parse("tiny, C=12") == Size("tiny", (("C", 12),))
    for text in ("tiny", "C=16,layers=8", "C=16,N=5", "tiny,C=12"):
        assert str(Size.parse(text)) == text
    assert size_from("tiny", C=4, N=None) == Size("tiny", (("C", 4),))
    assert size_from(None, C=None) is None and size_from(None, N=2) == Size(None, (("N", 2),))
    assert Size.default_of("small").fallback and not Size.parse("small").fallback


@pytest.mark.parametrize("text", ["C=many", "C=0", "tiny,small", "C=16,tiny", "", "=3"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(ConfigError, match="cannot read size"):
        Size.parse(text)


def test_budget() -> None:
    assert Budget.parse("5M") == Budget(5_000_000)
    assert Budget.parse("20M", "5G") == Budget(20_000_000, 5_000_000_000)
    assert str(Budget.parse("5M", "5G")) == "5.00M params, 5.00G FLOPs"
    assert Budget.parse() == Budget() and str(Budget()) == "no budget"
    with pytest.raises(BudgetError, match="5M"):
        Budget.parse("lots")
    with pytest.raises(BudgetError, match="positive"):
        Budget(0)


def test_data_spec() -> None:
    spec = DataSpec(train_size=512, val_size=256)
    assert spec.limit == 768 and DataSpec().limit is None
    assert DataSpec(val_size=10).with_defaults(None, 500) == DataSpec(val_size=10)
    assert DataSpec().with_defaults(100, 50) == DataSpec(train_size=100, val_size=50)
    with pytest.raises(ConfigError, match="--val-size must be at least 1"):
        DataSpec(val_size=0)


def test_specs_import_no_torch() -> None:
    code = "import sys, robnas.specs; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
