"""The NB201 robustness dataset (Jung et al., ICLR 2023) and its same-parameter-count observation.

The paper reports that NB201 networks with the same parameter count (exactly two `nor_conv_3x3`
and no `nor_conv_1x1`) range widely in mean adversarial accuracy. `same_params_study` recomputes
that from the dataset files and reports which edges the most robust of them put the convolutions on.

Definitions used here (stated in every report):
- architectures: the 6 466 evaluated, non-isomorphic networks (an id whose `isomorph` is itself),
  selected by their own cell string; other ids of a class may hold dead ops and differ in params.
- mean adversarial accuracy: the mean over every (attack, eps) pair of FGSM, PGD, APGD-CE and
  Square (L-inf), all eps the dataset has except FGSM at 255/255, which destroys the image: 31 values.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from robnas.analysis import edge_labels, md_table
from robnas.errors import DataError
from robnas.genotype import Genotype
from robnas.space import get_space

log = logging.getLogger(__name__)

ATTACKS = ("fgsm@Linf", "pgd@Linf", "aa_apgd-ce@Linf", "aa_square@Linf")
EXCLUDED_EPS = {"fgsm@Linf": (255.0,)}
MEAN_ADV_DEFINITION = (
    "mean accuracy over every (attack, eps) pair of FGSM, PGD, APGD-CE and Square (L-inf) in the "
    "dataset, eps in {0.1, 0.5, 1, 2, 3, 4, 8}/255 (FGSM also 5, 6, 7/255; its 255/255 is left "
    "out), 31 values per architecture"
)
CONV = "nor_conv_3x3"


@dataclass(frozen=True)
class Nb201Robustness:
    """The evaluated architectures of the dataset and their accuracies (fractions)."""

    root: Path
    strings: dict[str, str]  # evaluated id -> NB201 arch string
    evaluated: dict[str, str]  # any NB201 arch string -> the id its results are stored under
    epsilons: dict[str, list[float]]
    accuracy: dict[str, dict[str, list[float]]]  # key -> evaluated id -> values (clean: 1 value)

    def lookup(self, arch: str) -> str:
        """The id holding the results of an NB201 arch string (its isomorphism class)."""
        try:
            return self.evaluated[arch]
        except KeyError:
            raise DataError(f"{arch!r} is not an NB201 arch string of this dataset") from None

    def mean_adversarial(self, arch_id: str) -> float:
        values = [
            v
            for attack in ATTACKS
            for e, v in zip(self.epsilons[attack], self.accuracy[attack][arch_id], strict=True)
            if e not in EXCLUDED_EPS.get(attack, ())
        ]
        return float(np.mean(values))


def _read_json(path: Path) -> dict:
    try:
        with path.open() as handle:
            return dict(json.load(handle))
    except FileNotFoundError:
        raise DataError(
            f"{path} is missing; point to the nb201-robustness folder (meta.json, cifar10/)"
        ) from None
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"cannot read {path}: {err}; re-download the dataset file") from None


@functools.lru_cache(maxsize=2)
def _load(root: Path, keys: tuple[str, ...]) -> Nb201Robustness:
    meta = _read_json(root / "meta.json")
    try:
        ids, epsilons = meta["ids"], meta["epsilons"]
        strings = {k: v["nb201-string"] for k, v in ids.items() if str(v["isomorph"]) == k}
        evaluated = {v["nb201-string"]: str(v["isomorph"]) for v in ids.values()}
    except (KeyError, TypeError, AttributeError):
        raise DataError(
            f"{root / 'meta.json'} lacks 'ids'/'epsilons' in the dataset's format"
        ) from None
    accuracy: dict[str, dict[str, list[float]]] = {}
    for key in keys:
        data = _read_json(root / "cifar10" / f"{key}_accuracy.json")
        try:
            table = data["cifar10"][key]["accuracy"]
        except (KeyError, TypeError):
            raise DataError(f"{key}_accuracy.json lacks cifar10/{key}/accuracy") from None
        accuracy[key] = {k: v if isinstance(v, list) else [v] for k, v in table.items()}
        missing = set(strings) - set(accuracy[key])
        if missing:
            raise DataError(f"{key}_accuracy.json lacks {len(missing)} evaluated architectures")
    log.info("loaded %d NB201 architectures from %s", len(strings), root)
    epsilons = {k: [float(e) for e in v] for k, v in epsilons.items()}
    return Nb201Robustness(root, strings, evaluated, epsilons, accuracy)


def load_nb201_robustness(
    root: str | Path, keys: Sequence[str] = ("clean", *ATTACKS)
) -> Nb201Robustness:
    """Read meta.json and the accuracy files of `keys` (cached per folder)."""
    path = Path(root).expanduser().resolve()
    if not path.is_dir():
        raise DataError(f"NB201 robustness dataset not found at {path}; pass its folder")
    return _load(path, tuple(keys))


@dataclass(frozen=True)
class SameParamsStudy:
    """Architectures of one parameter count, ranked by mean adversarial accuracy (in %)."""

    table: pd.DataFrame  # id, arch, conv_edges, mean_adv_acc, clean_acc; best first
    edge_usage: pd.DataFrame  # edge, from_input, share_top, share_all
    pairs: pd.DataFrame  # conv_edges, count, best, mean, worst; best pair first
    top: int
    definition: str = MEAN_ADV_DEFINITION

    @property
    def n(self) -> int:
        return len(self.table)

    @property
    def spread(self) -> tuple[float, float]:
        col = self.table["mean_adv_acc"]
        return float(col.min()), float(col.max())


def _share(conv_edges: pd.Series, edge: str) -> float:
    """The share of architectures whose conv edges include `edge`."""
    return float(conv_edges.map(lambda text: edge in text.split(", ")).mean())


def same_params_study(benchmark_dir: str | Path, *, top: int = 20) -> SameParamsStudy:
    """The paper's same-parameter-count observation, recomputed from the dataset files."""
    data = load_nb201_robustness(benchmark_dir)
    space = get_space("nb201")
    names = edge_labels(space)
    rows = []
    for arch_id, text in data.strings.items():
        edges = Genotype.from_str(text, "nb201").edges(0)
        if sum(CONV in e for e in edges) != 2 or any("nor_conv_1x1" in e for e in edges):
            continue
        space.validate(Genotype.from_str(text, "nb201"))
        rows.append(
            {
                "id": int(arch_id),
                "arch": text,
                "conv_edges": ", ".join(
                    n for (n, _), e in zip(names, edges, strict=True) if CONV in e
                ),
                "mean_adv_acc": 100 * data.mean_adversarial(arch_id),
                "clean_acc": 100 * data.accuracy["clean"][arch_id][0],
            }
        )
    if not rows:
        raise DataError(f"no architecture with two nor_conv_3x3 and no nor_conv_1x1 in {data.root}")
    table = pd.DataFrame(rows).sort_values(["mean_adv_acc", "id"], ascending=[False, True])
    table = table.reset_index(drop=True)
    top = max(1, min(top, len(table)))
    best = table.head(top)
    usage = pd.DataFrame(
        {
            "edge": [n for n, _ in names],
            "from_input": [f for _, f in names],
            "share_top": [_share(best["conv_edges"], n) for n, _ in names],
            "share_all": [_share(table["conv_edges"], n) for n, _ in names],
        }
    )
    grouped = table.groupby("conv_edges")["mean_adv_acc"]
    pairs = pd.DataFrame(
        {
            "count": grouped.size(),
            "best": grouped.max(),
            "mean": grouped.mean(),
            "worst": grouped.min(),
        }
    )
    pairs = pairs.sort_values("best", ascending=False).reset_index()
    return SameParamsStudy(table=table, edge_usage=usage, pairs=pairs, top=top)


def same_params_tables(study: SameParamsStudy, rows: int = 10) -> list[str]:
    """The study as markdown lines: definition, spread, the best architectures, edge usage, pairs."""
    low, high = study.spread
    values = study.table["mean_adv_acc"]
    usage = study.edge_usage.sort_values("share_top", ascending=False)
    lead = usage.iloc[0]
    best_pair = study.pairs.iloc[0]
    lines = [
        f"Architectures: the {study.n} evaluated (non-isomorphic) NB201 cells with exactly two "
        "`nor_conv_3x3` and no `nor_conv_1x1`, hence the same parameter count. Mean adversarial "
        f"accuracy: {study.definition}. Edges are `j→k` between nodes 0 (cell input) to 3 (output).",
        "",
        f"- Spread: **{low:.1f}% to {high:.1f}%** (median {values.median():.1f}%, standard deviation "
        f"{values.std():.1f} pp, n={study.n}); the paper reports 20% to 41%.",
        f"- The top {study.top} put a 3x3 convolution on edge {lead['edge']} in "
        f"{100 * lead['share_top']:.0f}% of cases (vs {100 * lead['share_all']:.0f}% of all {study.n}); "
        f"the best pair of conv edges is {best_pair['conv_edges']} (best {best_pair['best']:.1f}%, "
        f"mean {best_pair['mean']:.1f}% over {int(best_pair['count'])} architectures).",
        "",
        f"Most robust {rows}:",
        "",
        *md_table(
            ["rank", "NB201 id", "arch", "conv edges", "mean adv. acc. (%)", "clean acc. (%)"],
            [
                [
                    r + 1,
                    row.id,
                    f"`{row.arch}`",
                    row.conv_edges,
                    f"{row.mean_adv_acc:.2f}",
                    f"{row.clean_acc:.1f}",
                ]
                for r, row in enumerate(study.table.head(rows).itertuples())
            ],
        ),
        f"Share of architectures with a 3x3 convolution on each edge, top {study.top} vs all:",
        "",
        *md_table(
            ["edge", "from cell input", f"top {study.top}", f"all {study.n}"],
            [
                [
                    r.edge,
                    "yes" if r.from_input else "no",
                    f"{100 * r.share_top:.0f}%",
                    f"{100 * r.share_all:.0f}%",
                ]
                for r in study.edge_usage.itertuples()
            ],
        ),
        "By pair of conv edges (mean adversarial accuracy, %):",
        "",
        *md_table(
            ["conv edges", "architectures", "best", "mean", "worst"],
            [
                [r.conv_edges, r.count, f"{r.best:.1f}", f"{r.mean:.1f}", f"{r.worst:.1f}"]
                for r in study.pairs.itertuples()
            ],
        ),
    ]
    return lines
