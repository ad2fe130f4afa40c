"""How a network-mode NB201 search scores a candidate: the protocols and, per target, the declared
objective each one maximises. Light to import (no torch), so the CLI can list the choices.

A protocol is what is measured on a candidate; a target is what the user asks for (`clean`,
`fgsm@1`, `pgd@1`: the NB201 robustness dataset's names, so `--objective` means the same in
tabular and network mode). Every objective has one shape:

    num_params + 1/2 + atan(within) / pi

the deployed parameter count first (under a budget: the largest cells that fit), and within
equal counts a formula of the protocol's measurements squashed into (0, 1). Across sizes no
signal of ours was validated (the parameter count is the best measured ranker there, Kendall
tau 0.59 against `clean` on the development draws); within a size each formula was chosen on
the development draws. A formula that ranks well among random cells can be exploited by an
optimiser that looks for its extremes (the declared `robust_objective`, maximised over the
whole 0.6M budget, returns an all-pool cell at clean 0.634), so robustness is ranked only
within a size and every cell-path count enters only over the range the development cells span
(`min_pool_per_path` capped at 1: "every path passes a pooling op").

docs/network_protocols.md states each formula with the evidence it was chosen on and when.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from robnas.errors import ConfigError, check_name
from robnas.objectives.scores import SCALES

#: what the user may ask a network-mode NB201 search to maximise (the dataset's metric names)
TARGETS = ("clean", "fgsm@1", "pgd@1")

PROTOCOLS: dict[str, str] = {
    "ranker": "the declared ranker of the target: NASWOT at initialisation at the deployed size "
    "(128 class-balanced training images) and the cell's path counts; no training (fast)",
    "lowfi": "low-fidelity standalone training: the cell trained normally at a small size on "
    "training images, then its margins clean and under FGSM and PGD at eps 1/255 on held-out "
    "images",
    "supernet": "the weight-sharing supernet trained normally at the proxy size; each candidate "
    "scored on inherited weights, clean and under FGSM and PGD at eps 1/255 on held-out images",
}
DEFAULT_PROTOCOL = "ranker"
#: Cells a search scores by default with each protocol (the preset's candidate count when larger):
#: what fits a few minutes of a 2-core CPU at the protocol's measured cost (ranker: about 50 cells
#: per CPU-minute, lowfi: about 4; docs/network_protocols.md).
DEFAULT_TRIALS: dict[str, int] = {"ranker": 300, "lowfi": 30}

#: the within-size formula of each (protocol, target), as text (docs, summaries)
FORMULAS: dict[tuple[str, str], str] = {
    ("ranker", "clean"): "naswot / 24.71 + paths_nopool / 0.812 (the declared `score`)",
    ("ranker", "fgsm@1"): "naswot / 24.71 + 0.5 * min(min_pool_per_path, 1) / 0.2818 "
    "- free_paths / 0.6191",
    ("ranker", "pgd@1"): "min(min_pool_per_path, 1) / 0.2818 - free_paths / 0.6191 "
    "+ 0.001 * naswot / 24.71 (NASWOT only breaks ties)",
    (
        "lowfi",
        "clean",
    ): "clean_margin of the low-fidelity network (true logit minus the best other)",
    ("lowfi", "fgsm@1"): "fgsm_margin of the low-fidelity network (the margin under FGSM)",
    ("lowfi", "pgd@1"): "pgd_margin of the low-fidelity network (the margin under PGD)",
    ("supernet", "clean"): "clean_acc on the supernet's inherited weights",
    ("supernet", "fgsm@1"): "fgsm_acc on the supernet's inherited weights",
    ("supernet", "pgd@1"): "pgd_acc on the supernet's inherited weights",
}

#: the metric key every protocol evaluator writes the objective under
OBJECTIVE_KEY = "objective"

#: what each measuring protocol reads per target: the supernet's accuracies; the low-fidelity
#: network's mean margins (continuous: on a few hundred scoring images they ranked cells within a
#: size where its 0/1 accuracies did not, experiments/results/lowfi_fidelity)
_MEASURED = {
    "supernet": {"clean": "clean_acc", "fgsm@1": "fgsm_acc", "pgd@1": "pgd_acc"},
    "lowfi": {"clean": "clean_margin", "fgsm@1": "fgsm_margin", "pgd@1": "pgd_margin"},
}


def check_protocol(protocol: str, target: str) -> tuple[str, str]:
    """(protocol, target) if both are known, else UnknownName naming the choices."""
    return check_name("protocol", protocol, PROTOCOLS), check_name("objective", target, TARGETS)


def _capped_pool(metrics: Mapping[str, float]) -> float:
    return min(float(metrics["min_pool_per_path"]), 1.0) / SCALES["min_pool_per_path"]


def within_size(protocol: str, target: str, metrics: Mapping[str, float]) -> float:
    """The declared within-size formula of (protocol, target) on one cell's measurements."""
    check_protocol(protocol, target)
    try:
        if protocol != "ranker":
            return float(metrics[_MEASURED[protocol][target]])
        naswot = float(metrics["naswot"]) / SCALES["naswot"]
        free = float(metrics["free_paths"]) / SCALES["free_paths"]
        if target == "clean":
            return naswot + float(metrics["paths_nopool"]) / SCALES["paths_nopool"]
        if target == "fgsm@1":
            return naswot + 0.5 * _capped_pool(metrics) - free
        return _capped_pool(metrics) - free + 0.001 * naswot
    except KeyError as err:
        raise ConfigError(
            f"the {protocol} protocol's {target} objective needs the measurement {err.args[0]!r}"
        ) from None


def objective(protocol: str, target: str, metrics: Mapping[str, float], num_params: int) -> float:
    """The declared objective: the deployed parameter count, then the within-size formula
    squashed into (0, 1). NaN when the measurement is NaN (the candidate failed)."""
    inner = within_size(protocol, target, metrics)
    if math.isnan(inner):
        return math.nan
    return float(num_params) + 0.5 + math.atan(inner) / math.pi


def definition(protocol: str, target: str) -> str:
    """One line a summary or a doc can print."""
    check_protocol(protocol, target)
    return (
        f"{protocol} / {target}: the deployed parameter count first; within equal counts "
        f"{FORMULAS[(protocol, target)]}"
    )


__all__ = [
    "DEFAULT_PROTOCOL",
    "FORMULAS",
    "OBJECTIVE_KEY",
    "DEFAULT_TRIALS",
    "PROTOCOLS",
    "TARGETS",
    "check_protocol",
    "definition",
    "objective",
    "within_size",
]
