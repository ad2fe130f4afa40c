"""One evaluator per network-mode protocol (robnas.objectives.protocols), each wrapped so its result
carries the declared objective of the target under the key `objective`.

`protocol_evaluator` builds the `ranker` and `lowfi` protocols from the data folder alone (CIFAR-10
training images; never the test split, never a benchmark); the `supernet` protocol needs the
trained supernet and its evaluator (robnas.evaluators.supernet), which `wrap` then wraps.
"""

from __future__ import annotations

from typing import Any

from robnas.data.datasets import load_dataset
from robnas.errors import ConfigError
from robnas.evaluators.base import Evaluator
from robnas.evaluators.lowfi import make_lowfi_evaluator
from robnas.evaluators.ranker import NASWOT_IMAGES, ObjectiveEvaluator, RankerEvaluator
from robnas.objectives.protocols import check_protocol
from robnas.space.search_space import SearchSpace

#: the fidelity the `lowfi` protocol trains at (robnas.evaluators.lowfi.FIDELITIES)
LOWFI_FIDELITY = "3epoch-4k"


def wrap(inner: Evaluator, protocol: str, target: str) -> ObjectiveEvaluator:
    return ObjectiveEvaluator(inner, protocol, target)


def protocol_evaluator(
    protocol: str,
    target: str,
    space: SearchSpace,
    *,
    final_macro: dict[str, Any],
    dataset: str = "cifar10",
    data_dir: Any = None,
    seed: int = 0,
    fidelity: str = LOWFI_FIDELITY,
) -> ObjectiveEvaluator:
    """The `ranker` or `lowfi` protocol's evaluator for `target` at the deployed size
    `final_macro` (the budget's). `seed` seeds the low-fidelity training; the ranker's signals
    are declared at seed 0 whatever the search's seed."""
    protocol, target = check_protocol(protocol, target)
    if protocol == "ranker":
        images = load_dataset(dataset, "train", data_dir=data_dir, limit=NASWOT_IMAGES, seed=0)
        inner: Evaluator = RankerEvaluator(space, final_macro, images, dataset=dataset)
    elif protocol == "lowfi":
        inner = make_lowfi_evaluator(
            fidelity, space, final_macro=final_macro, dataset=dataset, data_dir=data_dir, seed=seed
        )
    else:
        raise ConfigError(
            "the supernet protocol scores on a trained supernet: build its evaluator "
            "(robnas.evaluators.supernet) and wrap it"
        )
    return wrap(inner, protocol, target)


__all__ = ["LOWFI_FIDELITY", "protocol_evaluator", "wrap"]
