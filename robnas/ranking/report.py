"""The ranking report: every score against every ground-truth column, plus the split's test-retest.

Rows are cells (one per NB201 isomorph class); score columns are named by what they rank with
(higher = predicted better): `supernet_clean`, `supernet_fgsm`, `supernet_logp` (mean clean
log-probability of the true class), `params`, `flops`, negated
indicators, and `score`, the combined ranker a budgeted search uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from robnas.genotype import Genotype
from robnas.indicators import INDICATORS
from robnas.ranking.metrics import agreement, kendall, tau_gain, tau_within_interval

TRUTHS = ("clean", "fgsm@1", "pgd@1")
COLUMNS = ("kendall", "spearman", "kendall_within", "top5", "top10")


def with_rank_columns(table: pd.DataFrame) -> pd.DataFrame:
    """A per-cell table with `robnas rank`'s column names. experiments/results/oneshot_rank_nb201/*.csv
    name the supernet's accuracies `clean`/`fgsm@1` and the dataset's `true_*`; a `robnas rank`
    table names them `supernet_clean`/`supernet_fgsm` and the dataset's plainly."""
    if "true_clean" not in table:
        return table
    names = {"clean": "supernet_clean", "fgsm@1": "supernet_fgsm"}
    return table.rename(columns=names | {f"true_{t}": t for t in TRUTHS})


def draw_classes(rows: np.ndarray, strings: Sequence[str], count: int, seed: int) -> list[str]:
    """One representative string for each of `count` isomorph classes drawn uniformly.

    rows[i] is the class of strings[i]; drawing classes (not strings) keeps big classes (many
    isomorphic strings) from being over-represented."""
    first: dict[int, int] = {}
    for index, row in enumerate(rows):
        first.setdefault(int(row), index)
    if count > len(first):
        raise ValueError(f"asked for {count} classes; the benchmark has {len(first)}")
    chosen = np.random.default_rng(seed).choice(sorted(first), size=count, replace=False)
    return [strings[first[int(r)]] for r in chosen]


def draw_disjoint_classes(
    bench: Any, space: Any, count: int, seed: int, taken: Iterable[str]
) -> list[str]:
    """`count` classes drawn uniformly (seed), none of them the class of a cell string in `taken`
    (the cells of earlier draws, without the space prefix): a new sample to test on."""
    classes = {space.canonical(Genotype.from_str(f"{space.name}:{a}")) for a in taken}
    if count + len(classes) > bench.num_unique:
        raise ValueError(
            f"only {bench.num_unique - len(classes)} classes outside the earlier draws; "
            f"asked for {count}"
        )
    pool = draw_classes(bench.rows, bench.strings, count + len(classes), seed)
    fresh = [
        a for a in pool if space.canonical(Genotype.from_str(f"{space.name}:{a}")) not in classes
    ]
    if len(fresh) < count:
        raise ValueError(f"only {len(fresh)} classes outside the earlier draws; asked for {count}")
    return fresh[:count]


def combined_score(params: np.ndarray, supernet: np.ndarray) -> np.ndarray:
    """Parameters across sizes, the supernet within equal sizes: lexicographic (params, supernet).

    Within a budget a search compares cells of about the same size, where only the supernet can
    tell them apart; across sizes counting parameters is the stronger ranker on NB201 (see the
    README). Supernet scores are accuracies in [0, 1], so adding them to the parameter count's
    dense rank orders by rank first and by the supernet inside a rank."""
    dense = np.unique(params, return_inverse=True)[1].astype(float)
    return dense + np.clip(supernet, 0.0, 0.999999)


def ranks_over_all(values: np.ndarray) -> np.ndarray:
    """Ranks over all cells scaled into (0, 1), ties sharing their mean rank: one signal's place
    among every cell, whatever its scale (the supernets' mean rank in
    experiments/supernet_seeds_nb201.py is compared across sizes too, so it needs these)."""

    values = np.asarray(values)
    return rankdata(values) / (len(values) + 1)


def within_ranks(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Ranks inside each group (cells of one parameter count) scaled into (0, 1) by the group's
    size, ties sharing their mean rank: a signal's place among the cells it competes with under
    a budget. Averaging these (not ranks over all cells) is what "the mean of the ranks within
    equal parameter counts" means: over all cells, a signal whose spread tracks size would weigh
    more in some groups than in others."""

    values, groups = np.asarray(values, dtype=float), np.asarray(groups)
    if values.shape != groups.shape:
        raise ValueError(f"values and groups differ in shape: {values.shape}, {groups.shape}")
    out = np.empty(len(values))
    _, inverse = np.unique(groups, return_inverse=True)
    for group in range(inverse.max() + 1 if len(values) else 0):
        members = inverse == group
        out[members] = rankdata(values[members]) / (members.sum() + 1)
    return out


def params_then_mean_rank(params: np.ndarray, *signals: np.ndarray) -> np.ndarray:
    """`combined_score` with, within equal parameter counts, the mean of the signals' ranks
    inside that group (one signal: its rank): how robnas rank and experiments/combine_nb201.py
    pair signals."""
    params = np.asarray(params)
    ranks = [within_ranks(np.asarray(signal), params) for signal in signals]
    return combined_score(params, np.mean(np.stack(ranks), axis=0))


def signed_indicator(table: pd.DataFrame, name: str) -> tuple[str, pd.Series]:
    """An indicator column signed by its registered direction, so higher predicts more robust,
    and its label (`-name` where lower predicts more robust)."""

    sign = INDICATORS.get(name).direction
    return (f"-{name}" if sign < 0 else name), sign * table[name]


def agreement_table(
    table: pd.DataFrame, scores: Sequence[str], truths: Sequence[str] = TRUTHS
) -> pd.DataFrame:
    """One row per (score, truth): Kendall, Spearman, within-equal-params Kendall, top-k."""
    out = []
    for score in scores:
        for truth in truths:
            row = agreement(table[score].to_numpy(), table[truth].to_numpy(), table["params"])
            out.append({"score": score, "truth": truth, **row})
    return pd.DataFrame(out)


def split_agreement(half_a: np.ndarray, half_b: np.ndarray, params: np.ndarray) -> dict[str, float]:
    """The same supernet scored on two disjoint halves of the split: how far it agrees with itself."""
    row = agreement(half_a, half_b, params.tolist())
    return {"kendall": row["kendall"], "kendall_within": row["kendall_within"]}


def agreement_markdown(agree: pd.DataFrame) -> list[str]:
    """The lines of a markdown table of `agreement_table`."""
    lines = [
        "| score | truth | Kendall tau | Spearman rho | tau within equal params | top-5% | top-10% |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in agree.itertuples():
        lines.append(
            f"| {r.score} | {r.truth} | {r.kendall:.3f} | {r.spearman:.3f} | "
            f"{r.kendall_within:.3f} | {r.top5:.2f} | {r.top10:.2f} |"
        )
    return lines


def markdown(
    agree: pd.DataFrame,
    retest: dict[str, float],
    retest_logp: dict[str, float] | None = None,
    gain: dict[str, tuple[float, float, float]] | None = None,
) -> str:
    lines = agreement_markdown(agree)
    if gain:
        parts = [f"`{t}` {g:+.3f} ({lo:+.3f}, {hi:+.3f})" for t, (g, lo, hi) in gain.items()]
        lines += [
            "",
            "`score`'s Kendall tau minus #params' (95% paired bootstrap interval over the cells; "
            "it beats counting parameters only where the interval lies above 0): "
            + "; ".join(parts)
            + ".",
        ]
    lines += [
        "",
        f"Test-retest (supernet clean accuracy on two disjoint halves of the split): tau "
        f"{retest['kendall']:.3f} overall, {retest['kendall_within']:.3f} within equal params. "
        "No score can agree with the ground truth much beyond what the split agrees with itself.",
    ]
    if retest_logp is not None:
        lines.append(
            f"The same for the supernet's mean log-probability of the true class: tau "
            f"{retest_logp['kendall']:.3f} overall, {retest_logp['kendall_within']:.3f} within."
        )
    return "\n".join(lines) + "\n"


def declared_agreement_lines(table: pd.DataFrame, names: list[str], n_boot: int) -> list[str]:
    """Markdown rows: each ranker's Kendall tau against each truth, its paired gain over #params
    and its tau within equal params, with 95% bootstrap intervals (a declared ranker's test)."""
    lines = [
        "| ranker | truth | Kendall tau | gain over #params (95% paired interval) "
        "| tau within equal params (95% interval) |",
        "|---|---|---|---|---|",
    ]
    groups = table["params"].tolist()
    for truth in TRUTHS:
        t = table[truth]
        base = kendall(table["params"], t)
        lines.append(f"| #params | {truth} | {base:.3f} | - | - (0 by construction) |")
        for name in names:
            s = table[name]
            gain = tau_gain(s, table["params"], t, n_boot=n_boot)
            within, lo, hi = tau_within_interval(s, t, groups, n_boot=n_boot)
            tau = kendall(s, t)
            lines.append(
                f"| {name} | {truth} | {tau:.3f} | {gain[0]:+.3f} ({gain[1]:+.3f}, "
                f"{gain[2]:+.3f}) | {within:.3f} ({lo:.3f}, {hi:.3f}) |"
            )
    return lines


def simulated_search(
    table: pd.DataFrame,
    scores: dict[str, np.ndarray],
    k: int,
    repeats: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """What a search that scores k random cells of `table` and keeps the best returns, per
    ranker in `scores` (one scalar per row; higher is kept): the kept cell's mean true `TRUTHS`
    over `repeats` draws of k cells, beside a random cell and oracle random search (the truly
    best of the same k cells by each truth). Every contender sees the same k cells in a draw."""
    truth = table[list(TRUTHS)].to_numpy(dtype=float)
    rows: dict[str, list[np.ndarray]] = {name: [] for name in scores}
    rows["a random cell"] = []
    oracle: dict[str, list[np.ndarray]] = {t: [] for t in TRUTHS}
    for _ in range(repeats):
        idx = rng.choice(len(table), size=k, replace=False)
        for name, values in scores.items():
            rows[name].append(truth[idx[np.argmax(values[idx])]])
        rows["a random cell"].append(truth[idx[0]])
        for j, t in enumerate(TRUTHS):
            oracle[t].append(truth[idx[np.argmax(truth[idx, j])]])
    out = []
    for name, winners in rows.items():
        w = np.array(winners)
        out.append({"ranker": name, **{t: w[:, j].mean() for j, t in enumerate(TRUTHS)}})
    for t in TRUTHS:
        w = np.array(oracle[t])
        row = {"ranker": f"oracle random search (best {t} of the k)"}
        row |= {u: w[:, i].mean() for i, u in enumerate(TRUTHS)}
        out.append(row)
    return pd.DataFrame(out).assign(k=k)
