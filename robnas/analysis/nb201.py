"""The NB201 robustness dataset (Jung et al., ICLR 2023) and its same-parameter-count observation.

The paper reports that NB201 networks with the same parameter count (exactly two `nor_conv_3x3`
and no `nor_conv_1x1`) range widely in mean adversarial accuracy. `same_params_study` recomputes
that from the dataset files and reports which edges the most robust of them put the convolutions on.

Definitions used here (stated in every report):
- architectures: the 6 466 evaluated, non-isomorphic networks (the id naming each isomorphism class),
  selected by their own cell string; other ids of a class may hold dead ops and differ in params.
- mean adversarial accuracy: the mean over every (attack, eps) pair of FGSM, PGD, APGD-CE and
  Square (L-inf), all eps the dataset has except FGSM at 255/255, which destroys the image: 31 values.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from robnas.analysis.edges import edge_labels
from robnas.analysis.markdown import md_table
from robnas.data.tabular import TabularBenchmark, load_benchmark
from robnas.errors import DataError
from robnas.space.search_space import get_cell_space

ATTACKS = ("fgsm", "pgd", "aa_apgd-ce", "aa_square")
EXCLUDED = {"fgsm@255"}  # FGSM at 255/255 replaces the image; no architecture survives it
MEAN_ADV_DEFINITION = (
    "the mean over every (attack, eps) pair of FGSM, PGD, APGD-CE and Square (L-inf) in the "
    "dataset, eps in {0.1, 0.5, 1, 2, 3, 4, 8}/255 (FGSM also 5, 6, 7/255; its 255/255 is left "
    "out), 31 values per architecture"
)
CONV = "nor_conv_3x3"


def mean_adversarial_columns(bench: TabularBenchmark) -> list[int]:
    """Columns of the benchmark that enter the mean adversarial accuracy (31 for the full dataset)."""
    cols = [
        i for i, c in enumerate(bench.columns) if c.split("@")[0] in ATTACKS and c not in EXCLUDED
    ]
    if not cols:
        raise DataError(f"{bench.root} has no FGSM/PGD/APGD-CE/Square accuracy files")
    return cols


def evaluated_indices(bench: TabularBenchmark) -> np.ndarray:
    """Per result row, the NB201 index that was evaluated: the smallest index of its isomorphism
    class (the dataset names each class by it, and orders rows by it)."""
    _, first = np.unique(bench.rows, return_index=True)
    return first


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
    bench = load_benchmark(benchmark_dir)
    space = get_cell_space("nb201")
    names = edge_labels(space)
    adv = mean_adversarial_columns(bench)
    clean = bench.column("clean")
    rows = []
    for row, index in enumerate(evaluated_indices(bench)):
        text = bench.strings[index]
        edges = space.parse(text).edges(0)
        if sum(CONV in e for e in edges) != 2 or any("nor_conv_1x1" in e for e in edges):
            continue
        rows.append(
            {
                "id": int(index),
                "arch": text,
                "conv_edges": ", ".join(
                    n for (n, _), e in zip(names, edges, strict=True) if CONV in e
                ),
                "mean_adv_acc": 100 * float(np.mean(bench.table[row, adv])),
                "clean_acc": 100 * float(bench.table[row, clean]),
            }
        )
    if not rows:
        raise DataError(
            f"no architecture with two nor_conv_3x3 and no nor_conv_1x1 in {bench.root}"
        )
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


def _edge_list(frame: pd.DataFrame) -> str:
    return (
        ", ".join(
            f"{r.edge} ({100 * r.share_top:.0f}% vs {100 * r.share_all:.0f}%)"
            for r in frame.itertuples()
        )
        or "none"
    )


def same_params_tables(study: SameParamsStudy, rows: int = 10) -> list[str]:
    """The study as markdown lines: definition, spread, the best architectures, edge usage, pairs."""
    low, high = study.spread
    values = study.table["mean_adv_acc"]
    usage = study.edge_usage.sort_values("share_top", ascending=False)
    lead = usage.iloc[0]
    best_pair = study.pairs.iloc[0]
    by_mean = study.pairs.sort_values("mean", ascending=False).iloc[0]
    lines = [
        f"Architectures: the {study.n} evaluated (non-isomorphic) NB201 cells with exactly two "
        "`nor_conv_3x3` and no `nor_conv_1x1`, hence the same parameter count. Mean adversarial "
        f"accuracy: {study.definition}. Edges are `j→k` from node j to node k; node 0 is the cell input, node 3 the cell output.",
        "",
        f"- Spread: **{low:.1f}% to {high:.1f}%** (median {values.median():.1f}%, standard deviation "
        f"{values.std():.1f} pp, n={study.n}); the paper reports 20% to 41%.",
        f"- The top {study.top} put a 3x3 convolution on edge {lead['edge']} in "
        f"{100 * lead['share_top']:.0f}% of cases (vs {100 * lead['share_all']:.0f}% of all {study.n}); "
        f"the best pair of conv edges is {best_pair['conv_edges']} (best {best_pair['best']:.1f}%, "
        f"mean {best_pair['mean']:.1f}% over {int(best_pair['count'])} architectures); by mean it is "
        f"{by_mean['conv_edges']} ({by_mean['mean']:.1f}% mean, worst {by_mean['worst']:.1f}%, "
        f"{int(by_mean['count'])} architectures).",
        f"- Over-represented among the top {study.top} (share at least 1.5x that of all): "
        f"{_edge_list(usage[usage.share_top >= 1.5 * usage.share_all])}; under-represented (at most "
        f"half): {_edge_list(usage[usage.share_top <= 0.5 * usage.share_all])}.",
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
