from __future__ import annotations

import json

import pytest
from data_helpers import needs

from robnas.errors import InvalidGenotype
from robnas.genotype import Genotype
from robnas.space.search_space import get_space


@needs("nb201-robustness")
def test_nb201_strings_of_every_id_round_trip(data_root):
    meta = json.loads((data_root / "nb201-robustness" / "meta.json").read_text())
    space = get_space("nb201")
    strings = [entry["nb201-string"] for entry in meta["ids"].values()]
    assert len(strings) == 15625
    for text in strings:
        g = space.parse(text)
        assert g.to_str() == f"nb201:{text}"
        assert Genotype.from_str(g.to_str()) == g
        assert Genotype.from_dict(json.loads(g.to_json())) == g
    assert len({space.parse(t) for t in strings}) == 15625


def test_darts_genotype_string_json_and_codes_round_trip():
    space = get_space("darts")
    codes = ["11", "10", "01", "00", "11", "01", "10", "00", "11", "01", "10", "00", "11", "01"]
    g = space.parse(",".join(codes))
    assert g.to_codes(space.ops) == [codes]
    assert space.parse(g.to_str()) == g
    assert Genotype.from_dict(g.to_dict()) == g
    assert hash(g) == hash(space.parse(g.to_str()))
    # '10' is skip_connect, '01' sep_conv_3x3 (RobNet's bit order); both are summed
    assert g.cells[0][0] == (
        frozenset({"skip_connect", "sep_conv_3x3"}),
        frozenset({"skip_connect"}),
    )
    assert g.to_str().startswith("darts:|sep_conv_3x3~0|skip_connect~0|skip_connect~1|+")


def test_cell_free_form_round_trips():
    space = get_space("darts")
    import numpy as np

    g = space.sample(np.random.default_rng(1), free=True)
    assert len(g.cells) == 20 and not g.shared
    assert Genotype.from_str(g.to_str()) == g
    assert g.key == Genotype.from_str(g.to_str()).key and len(g.key) == 16


@pytest.mark.parametrize(
    "text, message",
    [
        ("nb201:|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv'"),
        ("nb201:|none~0|+|none~0|+|none~0|none~1|none~2|", "node 1 has 1 inputs"),
        ("nb201:|none~0|+|none~0|none~1|", "2 nodes"),
        (
            "nb201:|skip_connect~0|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|",
            "not allowed",
        ),
        ("nb201:|none0|", "expected op~input_index"),
        ("darts:|none~0|none~2|+", "every input"),
    ],
)
def test_invalid_genotypes_name_the_problem(text, message):
    space = get_space(text.split(":")[0])
    with pytest.raises(InvalidGenotype, match=message):
        space.parse(text)


def test_bad_codes_are_rejected():
    space = get_space("darts")
    with pytest.raises(InvalidGenotype, match="edge 1: code '2'"):
        space.parse("11,2," + ",".join(["00"] * 12))
    with pytest.raises(InvalidGenotype, match="do not fill whole nodes"):
        space.parse(",".join(["00"] * 13))
