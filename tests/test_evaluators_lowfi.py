"""The low-fidelity protocol: a short normal training, then clean / FGSM / PGD at one eps."""

from __future__ import annotations

import pytest
import torch
from data_helpers import DATA, needs

from robnas.config import TrainConfig
from robnas.data.datasets import ImageData
from robnas.evaluators.lowfi import LOWFI_KEYS, LowFidelityEvaluator, margins
from robnas.genotype import Genotype
from robnas.models import sizing
from robnas.space.search_space import get_space

CELL = "|nor_conv_3x3~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
# the same function: node 1 feeds nothing, so the op on the edge into it does not matter
ISOMORPH = "|nor_conv_1x1~0|+|avg_pool_3x3~0|none~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"


def _data(n: int, seed: int) -> ImageData:
    gen = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=gen)
    return ImageData(images, torch.arange(n) % 10, tuple("abcdefghij"))


def _evaluator(seed: int = 0, method: str = "clean") -> LowFidelityEvaluator:
    space = get_space("nb201")
    cfg = TrainConfig(
        epochs=1, batch_size=16, lr=0.05, method=method, augment=False, warmup_epochs=0.0,
        device="cpu",
    )  # fmt: skip
    return LowFidelityEvaluator(
        space,
        space.resolve_macro(C=4, N=1),
        _data(16, 1),
        _data(12, 2),
        cfg,
        final_macro=space.resolve_macro("paper"),
        batch_size=8,
        seed=seed,
    )


def test_margins_are_the_true_logit_minus_the_best_other() -> None:
    logits = torch.tensor([[2.0, 1.0, 0.5], [0.0, 3.0, 1.0]])
    assert margins(logits, torch.tensor([0, 0])).tolist() == [1.0, -3.0]


def test_scores_one_cell_repeats_itself_and_counts_isomorphs_once() -> None:
    g = Genotype.from_str(f"nb201:{CELL}")
    evaluator = _evaluator(method="pgd")
    assert evaluator.train_cfg.method == "clean"  # trained normally whatever the config says
    first = evaluator.evaluate(g)
    m = first.metrics
    for key in ("clean_acc", "fgsm_acc", "pgd_acc"):
        assert 0.0 <= m[key] <= 1.0
    # robust accuracy counts an image only if it is right clean too
    assert m["fgsm_acc"] <= m["clean_acc"] and m["pgd_acc"] <= m["clean_acc"]
    # an attack inside eps lowers the mean margin (it ascends the loss)
    assert m["fgsm_margin"] < m["clean_margin"] and m["pgd_margin"] < m["clean_margin"]
    # the budget binds the deployed size, not the C=4 N=1 copy that was trained
    space = get_space("nb201")
    assert first.num_params == sizing.num_params(space, g, space.resolve_macro("paper"), "cifar10")
    twin = evaluator.evaluate(Genotype.from_str(f"nb201:{ISOMORPH}")).metrics
    assert {k: twin[k] for k in LOWFI_KEYS} == {k: m[k] for k in LOWFI_KEYS}
    assert evaluator.queries == 1  # the isomorph was answered from memory
    again = _evaluator().evaluate(g)
    assert again.metrics == m  # seeded from (seed, genotype): the same numbers
    other = _evaluator(seed=5).evaluate(g)
    assert other.metrics["clean_margin"] != pytest.approx(m["clean_margin"], abs=1e-9)


def test_refuses_empty_data() -> None:
    with pytest.raises(ValueError, match="images"):
        LowFidelityEvaluator(
            get_space("nb201"), {}, _data(0, 0), _data(4, 0), TrainConfig(method="clean")
        )


def test_fidelities_train_normally_and_refuse_bad_counts() -> None:
    from robnas.evaluators.lowfi import FIDELITIES, LowFidelity

    for f in FIDELITIES.values():
        cfg = f.train_config()
        assert cfg.method == "clean" and cfg.epochs == f.epochs and cfg.batch_size == f.batch_size
        assert cfg.peak_lr == pytest.approx(f.lr * f.batch_size / 128)
    with pytest.raises(ValueError, match="score_images"):
        LowFidelity("bad", 8, 1, 100, 1, 32, 0.1, 5000, 3, augment=False)
    with pytest.raises(ValueError, match=">= 1"):
        LowFidelity("bad", 8, 0, 100, 1, 32, 0.1, 10, 3, augment=False)


@needs("cifar10")
def test_fidelity_data_scores_on_balanced_images_the_training_never_saw() -> None:
    from robnas.evaluators.lowfi import LowFidelity, lowfi_data

    f = LowFidelity("t", 4, 1, 60, 1, 16, 0.1, 20, 1, augment=False, held_out=30)
    train, score = lowfi_data(f, dataset="cifar10", data_dir=DATA, seed=0)
    assert len(train) == 60 and len(score) == 20
    assert torch.bincount(score.labels, minlength=10).tolist() == [2] * 10
    assert score.labels[:10].unique().numel() > 2  # shuffled, not class by class
    seen = {bytes(img.numpy()) for img in train.images}
    assert not any(bytes(img.numpy()) in seen for img in score.images)
