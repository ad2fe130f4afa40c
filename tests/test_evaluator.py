from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from robnas.config import TrainConfig
from robnas.data.datasets import ImageData, load_dataset, split_train_val
from robnas.errors import InvalidGenotype, UnknownName
from robnas.evaluators.base import DEFAULT_INDICATORS, Scoring, genotype_seed
from robnas.evaluators.indicator import IndicatorEvaluator
from robnas.evaluators.standalone import StandaloneEvaluator
from robnas.evaluators.supernet import SupernetEvaluator
from robnas.genotype import Genotype
from robnas.indicators.robust import clean_accuracy
from robnas.indicators.structure import genotype_flops
from robnas.models import sizing
from robnas.models.supernet import Supernet
from robnas.space.search_space import get_space
from robnas.specs import AttackSpec, Eps
from robnas.training.loop import train

SPACE = get_space("darts")
MACRO = SPACE.resolve_macro("tiny", C=4, layers=3)
FINAL = SPACE.resolve_macro("tiny", C=6, layers=4)
ICFG = {"attack_steps": 2, "jac_method": "random", "jac_projections": 2}


def _g(seed: int) -> Genotype:
    return SPACE.sample(np.random.default_rng(seed))


def _random_data(n: int = 16, seed: int = 0) -> ImageData:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), generator=gen, dtype=torch.uint8)
    return ImageData(images, torch.arange(n) % 10, tuple(str(i) for i in range(10)))


@pytest.fixture(scope="module")
def real_split(data_root: Path) -> tuple[ImageData, ImageData]:
    data = load_dataset("cifar10", "train", data_dir=data_root, limit=96, seed=0)
    return split_train_val(data, 32, seed=0)


def test_genotype_seed_is_stable_and_distinguishes() -> None:
    g, h = _g(0), _g(1)
    assert genotype_seed(0, g) == genotype_seed(0, Genotype.from_str(g.to_str()))
    assert len({genotype_seed(0, g), genotype_seed(0, h), genotype_seed(1, g)}) == 3
    assert 0 <= genotype_seed(123, g) < 2**31


def test_indicator_evaluator_on_fresh_networks_is_seeded_and_order_free() -> None:
    data = _random_data()

    def make(seed: int) -> IndicatorEvaluator:
        scoring = Scoring(attack=None, indicators=DEFAULT_INDICATORS, indicator_cfg=ICFG)
        return IndicatorEvaluator(SPACE, MACRO, data, scoring, final_macro=FINAL, seed=seed)

    g, h = _g(0), _g(1)
    rng_before = torch.get_rng_state()
    alone = make(0).evaluate(g)
    assert torch.equal(torch.get_rng_state(), rng_before)  # no global seeding
    evaluator = make(0)
    evaluator.evaluate(h)
    again = evaluator.evaluate(g)
    assert again.metrics == alone.metrics and again.num_params == alone.num_params
    assert make(1).evaluate(g).metrics["jac_norm"] != alone.metrics["jac_norm"]  # other init
    assert alone.status == "ok" and alone.seconds > 0
    assert set(alone.metrics) == {
        "fsp_dist",
        *(f"fsp_dist_cell{k}" for k in range(3)),
        "jac_norm",
        "density",
        "edge_density",
        "flops",
    }
    # sizes refer to the final macro, not the scored one
    assert alone.num_params == sizing.num_params(SPACE, g, FINAL)
    assert alone.metrics["flops"] == genotype_flops(SPACE, g, FINAL)
    assert alone.metrics["density"] == SPACE.density(g)


def test_indicator_evaluator_inherits_supernet_weights() -> None:
    supernet = Supernet(SPACE, MACRO)
    data = _random_data()
    g = _g(2)
    evaluator = IndicatorEvaluator(
        SPACE,
        None,
        data,
        Scoring(
            attack=None,
            indicators=("jac_norm", "robust_acc"),
            indicator_cfg={"eval_attack": "fgsm"},
        ),
        supernet=supernet,
        recal_batches=0,
    )
    result = evaluator.evaluate(g)
    model = supernet.extract(g)
    images, labels = data.floats(), data.labels
    assert result.metrics["clean_acc"] == clean_accuracy(model, images, labels)
    jac = Scoring(attack=None, indicators=("jac_norm",))
    fresh = IndicatorEvaluator(SPACE, MACRO, data, jac, recal_batches=0).evaluate(g)
    assert fresh.metrics["jac_norm"] != result.metrics["jac_norm"]
    assert result.num_params == sizing.num_params(
        SPACE, g, MACRO
    )  # final macro defaults to the supernet's


def test_bad_settings_fail_early() -> None:
    data = _random_data(4)
    with pytest.raises(UnknownName, match="fsp_dist"):
        IndicatorEvaluator(SPACE, MACRO, data, Scoring(indicators=("nope",)))
    with pytest.raises(UnknownName, match="unknown attack 'pgd21'; known: fgsm, pgd"):
        IndicatorEvaluator(SPACE, MACRO, data, Scoring(attack=AttackSpec("pgd21")))
    nb201 = get_space("nb201")
    none = Scoring(attack=None)
    with pytest.raises(InvalidGenotype):
        IndicatorEvaluator(SPACE, MACRO, data, none).evaluate(
            nb201.sample(np.random.default_rng(0))
        )
    with pytest.raises(ValueError, match="macro"):
        IndicatorEvaluator(SPACE, None, data, none)
    with pytest.raises(ValueError, match="batch_size"):
        IndicatorEvaluator(SPACE, MACRO, data, Scoring(batch_size=0))


def test_supernet_evaluator_scores_the_inherited_path_on_val(
    real_split: tuple[ImageData, ImageData],
) -> None:
    train, val = real_split
    supernet = Supernet(SPACE, MACRO)
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    common = dict(
        finetune_cfg=None,
        final_macro=FINAL,
        scoring=Scoring(
            indicators=("fsp_dist",), indicator_cfg=ICFG, indicator_samples=8, batch_size=16
        ),
        seed=3,
    )
    g, h = _g(4), _g(5)
    # Without recalibration the score is the standalone extracted network's accuracy on val:
    # the candidate is scored with exactly the weights and statistics it inherits.
    plain = SupernetEvaluator(supernet, SPACE, train, val, recal_batches=0, **common)  # type: ignore[arg-type]
    inherited = plain.evaluate(g)
    model = supernet.extract(g)
    assert inherited.metrics["clean_acc"] == clean_accuracy(model, val.floats(), val.labels)
    assert 0 <= inherited.metrics["pgd20_acc"] <= inherited.metrics["clean_acc"] <= 1
    assert {"fsp_dist", "fsp_dist_cell2", "density", "edge_density", "flops"} <= set(
        inherited.metrics
    )
    assert inherited.num_params == sizing.num_params(SPACE, g, FINAL)
    # Recalibration acts on the candidate's copy: the supernet is untouched, the scores change.
    evaluator = SupernetEvaluator(supernet, SPACE, train, val, recal_batches=2, **common)  # type: ignore[arg-type]
    result = evaluator.evaluate(g)
    assert all(torch.equal(v, before[k]) for k, v in supernet.state_dict().items())
    assert result.metrics["fsp_dist"] != inherited.metrics["fsp_dist"]
    # Deterministic and order-free: a fresh evaluator that scores another candidate first gives
    # the same result (a fresh one: the first answers a repeated class from memory).
    fresh = SupernetEvaluator(supernet, SPACE, train, val, recal_batches=2, **common)  # type: ignore[arg-type]
    fresh.evaluate(h)
    assert fresh.evaluate(g).metrics == result.metrics


def _tiny_train_cfg(**kw: object) -> TrainConfig:
    base = dict(
        epochs=1,
        batch_size=32,
        steps=2,
        warmup_epochs=0.0,
        val_size=16,
        val_steps=2,
        recal_batches=2,
        augment=False,
        device="cpu",
        seed=0,
    )
    return TrainConfig(**{**base, **kw})  # type: ignore[arg-type]


def test_supernet_evaluator_finetunes_only_the_candidate_copy(
    real_split: tuple[ImageData, ImageData],
) -> None:
    train_data, val = real_split
    supernet = Supernet(SPACE, MACRO)
    train(supernet, train_data, val, _tiny_train_cfg())  # a briefly trained supernet
    before = {k: v.clone() for k, v in supernet.state_dict().items()}
    cfg = _tiny_train_cfg(seed=5)
    common = dict(
        final_macro=FINAL,
        scoring=Scoring(
            indicators=("jac_norm",), indicator_cfg=ICFG, indicator_samples=8, batch_size=32
        ),
    )

    def make(finetune_cfg: TrainConfig | None, seed: int = 1) -> SupernetEvaluator:
        return SupernetEvaluator(
            supernet,
            SPACE,
            train_data,
            val,
            finetune_cfg=finetune_cfg,
            seed=seed,
            **common,  # type: ignore[arg-type]
        )

    g, h = _g(6), _g(7)
    result = make(cfg).evaluate(g)
    assert all(torch.equal(v, before[k]) for k, v in supernet.state_dict().items())
    assert result.status == "ok" and result.num_params == sizing.num_params(SPACE, g, FINAL)
    assert 0 <= result.metrics["pgd20_acc"] <= result.metrics["clean_acc"] <= 1
    # Deterministic for a seed and independent of what was evaluated before.
    again = make(cfg)
    again.evaluate(h)
    assert again.evaluate(g).metrics == result.metrics
    # The candidate really was finetuned, and the seed drives it.
    assert make(None).evaluate(g).metrics["jac_norm"] != result.metrics["jac_norm"]
    assert make(cfg, seed=2).evaluate(g).metrics != result.metrics


def test_standalone_evaluator_trains_from_scratch_and_resumes(
    real_split: tuple[ImageData, ImageData], tmp_path: Path
) -> None:
    train_data, val = real_split
    g = _g(7)
    evaluator = StandaloneEvaluator(
        SPACE,
        MACRO,
        train_data,
        val,
        _tiny_train_cfg(),
        out_dir=tmp_path,
        scoring=Scoring(attack=AttackSpec("fgsm", Eps.of_255(8), 1), indicators=("density",)),
        seed=2,
    )
    result = evaluator.evaluate(g)
    assert (tmp_path / g.key / "last.pt").is_file()
    assert set(result.metrics) == {"clean_acc", "fgsm_acc", "density", "edge_density", "flops"}
    assert result.num_params == sizing.num_params(SPACE, g, MACRO)
    # a finished run in out_dir is resumed, not retrained: the same network, the same scores
    assert evaluator.evaluate(g).metrics == result.metrics
    fgsm = Scoring(attack=AttackSpec("fgsm", Eps.of_255(8), 1))
    fresh = StandaloneEvaluator(
        SPACE, MACRO, train_data, val, _tiny_train_cfg(), scoring=fgsm, seed=2
    )
    assert fresh.evaluate(g).metrics == {k: v for k, v in result.metrics.items()}  # seeded init
