"""robnas.config: one Preset per name, one lookup refusing unknown names, and the CLI using it."""

from __future__ import annotations

import dataclasses

import pytest

from robnas.cli import main
from robnas.config import PRESETS, TRAIN_PRESETS, Preset, get_preset
from robnas.errors import UnknownName
from robnas.space.search_space import get_space
from robnas.specs import Size


def test_get_preset_returns_the_named_preset() -> None:
    tiny = get_preset("tiny")
    assert isinstance(tiny, Preset) and tiny.name == "tiny"
    assert tiny.train is TRAIN_PRESETS["tiny"]
    assert get_preset("paper").search_size == "small"  # RobNet searches a smaller supernet


def test_unknown_preset_is_refused_with_the_one_message_form() -> None:
    with pytest.raises(UnknownName) as err:
        get_preset("tinyy")
    assert str(err.value) == f"unknown preset 'tinyy'; known: {', '.join(sorted(PRESETS))}"


def test_presets_are_frozen_and_budgets_bind_the_paper_size() -> None:
    for name, p in PRESETS.items():
        assert p.name == name
        assert p.final_size == "paper"  # the deployed network, whatever the proxy
        with pytest.raises(dataclasses.FrozenInstanceError):
            p.candidates = p.candidates  # type: ignore[misc]
        with pytest.raises(dataclasses.FrozenInstanceError):
            p.candidates.trials = 3  # type: ignore[misc]


def test_a_preset_is_a_schedule_and_a_protocol_and_small_and_paper_share_only_the_protocol() -> (
    None
):
    small, paper = get_preset("small"), get_preset("paper")
    assert paper.candidates is small.candidates  # RobNet's protocol, written once
    assert (paper.candidates.trials, paper.candidates.finetune_epochs) == (1000, 3)
    assert paper.search_size == small.search_size == "small"  # RobNet searches a smaller supernet
    assert paper.train != small.train and paper.train.epochs == 170  # RobNet's schedule
    assert (small.size, paper.size) == ("small", "paper")
    tiny = get_preset("tiny").candidates
    assert (tiny.trials, tiny.finetune_images, tiny.score_images) == (10, 500, 250)


def test_every_size_a_preset_names_exists_in_the_darts_space() -> None:
    darts = get_space("darts")
    for p in PRESETS.values():
        for which in ("size", "search_size", "final_size"):
            size = p.default_size(which)
            assert size == Size.default_of(getattr(p, which)) and size.fallback
            assert darts.resolve_size(size) == darts.resolve_macro(getattr(p, which))
    # nb201 has no `small`: a preset's default size it lacks leaves the space's default macro
    nb201 = get_space("nb201")
    assert nb201.resolve_size(get_preset("paper").default_size("search_size")) == nb201.macro


def test_finetune_config_follows_the_candidate_protocol() -> None:
    tiny = get_preset("tiny")
    ft = tiny.finetune_config()
    assert (
        ft is not None and ft.epochs == tiny.candidates.finetune_epochs and ft.warmup_epochs == 0.0
    )
    assert ft.clean_epochs == 0.0  # candidates finetune adversarially from the first step
    none = dataclasses.replace(tiny.candidates, finetune_epochs=0)
    assert dataclasses.replace(tiny, candidates=none).finetune_config() is None


@pytest.mark.parametrize(
    "argv",
    [
        ["supernet", "train", "--space", "darts", "--preset", "tinyy", "--out", "{out}"],
        ["train", "resnet18", "--preset", "tinyy", "--out", "{out}"],
        ["arch", "info", "robnet_large", "--preset", "tinyy"],
        ["search", "--space", "darts", "--preset", "tinyy", "--out", "{out}"],
    ],
)
def test_every_command_refuses_an_unknown_preset(tmp_path, capsys, argv: list[str]) -> None:
    out = tmp_path / "run"
    assert main([a.replace("{out}", str(out)) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.endswith("unknown preset 'tinyy'; known: paper, small, tiny")
    assert not out.exists()


def test_unknown_names_share_one_message_form() -> None:
    from robnas.strategies import STRATEGIES

    darts = get_space("darts")
    cases = [
        (lambda: get_preset("huge"), "preset 'huge'"),
        (lambda: STRATEGIES.get("hill_climb"), "strategy 'hill_climb'"),
        (lambda: darts.resolve_size(Size.parse("huge")), "size 'huge'"),
    ]
    for call, what in cases:
        with pytest.raises(UnknownName) as err:
            call()
        assert str(err.value).startswith(f"unknown {what}; known: ")
