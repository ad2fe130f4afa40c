"""The evidence the ranker protocol's objectives (robnas/objectives/protocols.py) were chosen on:
the two development draws only (experiments/results/oneshot_rank_nb201/oneshot_rank_nb201.csv and
oneshot_rank_nb201_fresh500.csv, with NASWOT at C=16 N=5 from
experiments/results/indicators_nb201/indicators_nb201_{oneshot500,fresh500}_naswot_n5.csv).

Every within-size formula that was tried is listed, not only the ones declared. For each:
Kendall tau within equal parameter counts (pooled over the groups) against `clean`, `fgsm@1`,
`pgd@1` on the in-budget cells of each draw; then a simulated search that scores k random
in-budget development cells and keeps the best by "the parameter count first, the formula within
a size" (the declared objective's shape), repeated 2,000 times; and the top-5 of all in-budget
development cells by the objective (what a search that explores the whole budget tends to).

    python experiments/protocol_declaration_nb201.py --budget 600000 \\
        --out experiments/results/protocol_declaration_nb201
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from robnas.genotype import Genotype
from robnas.io import atomic_write_text
from robnas.models import sizing
from robnas.objectives.scores import SCALES, path_features
from robnas.ranking.metrics import kendall_within
from robnas.space.search_space import get_space

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DRAWS = {
    "first": (
        RESULTS / "oneshot_rank_nb201" / "oneshot_rank_nb201.csv",
        RESULTS / "indicators_nb201" / "indicators_nb201_oneshot500_naswot_n5.csv",
    ),
    "fresh": (
        RESULTS / "oneshot_rank_nb201" / "oneshot_rank_nb201_fresh500.csv",
        RESULTS / "indicators_nb201" / "indicators_nb201_fresh500_naswot_n5.csv",
    ),
}
TRUTHS = ("clean", "fgsm@1", "pgd@1")


def development_table() -> pd.DataFrame:
    """One row per development cell: draw, arch, deployed params, NASWOT, path counts, truth."""
    space = get_space("nb201")
    deployed = space.resolve_macro("paper")
    tables = []
    for draw, (truth_csv, naswot_csv) in DRAWS.items():
        t = pd.read_csv(truth_csv)[["arch", "true_clean", "true_fgsm@1", "true_pgd@1"]]
        t = t.merge(pd.read_csv(naswot_csv)[["arch", "naswot"]], on="arch")
        t.columns = ["arch", *TRUTHS, "naswot"]
        t.insert(0, "draw", draw)
        tables.append(t)
    table = pd.concat(tables, ignore_index=True)
    feats, params = [], []
    for arch in table["arch"]:
        g = Genotype.from_str(f"nb201:{arch}")
        feats.append(path_features(g.cells[0]))
        params.append(sizing.num_params(space, g, deployed, "cifar10"))
    table["params"] = params
    return pd.concat([table, pd.DataFrame(feats)], axis=1)


def formulas(t: pd.DataFrame) -> dict[str, np.ndarray]:
    """Every within-size formula tried (scaled by the development within-size SDs)."""
    nw = t["naswot"].to_numpy() / SCALES["naswot"]
    free = t["free_paths"].to_numpy() / SCALES["free_paths"]
    pool = np.minimum(t["min_pool_per_path"].to_numpy(), 1) / SCALES["min_pool_per_path"]
    pool_raw = t["min_pool_per_path"].to_numpy() / SCALES["min_pool_per_path"]
    nopool = t["paths_nopool"].to_numpy() / SCALES["paths_nopool"]
    return {
        "naswot (params+naswot)": nw,
        "`score`: naswot + paths_nopool [declared: clean]": nw + nopool,
        "naswot - free": nw - free,
        "naswot + pool - free": nw + pool - free,
        "naswot + 0.5 pool - free [declared: fgsm@1]": nw + 0.5 * pool - free,
        "naswot + 0.5 pool - 0.5 free": nw + 0.5 * pool - 0.5 * free,
        "naswot + uncapped pool - free": nw + pool_raw - free,
        "pool - free + 0.001 naswot [declared: pgd@1]": pool - free + 0.001 * nw,
    }


def objective(params: np.ndarray, within: np.ndarray) -> np.ndarray:
    """The declared shape: parameters first, the formula squashed into (0, 1) within a size."""
    return params.astype(float) + 0.5 + np.arctan(within) / np.pi


def simulate(t: pd.DataFrame, ks: list[int], repeats: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth = t[list(TRUTHS)].to_numpy()
    objs = {n: objective(t["params"].to_numpy(), f) for n, f in formulas(t).items()}
    objs["the largest cell (random among ties)"] = t["params"].to_numpy() + rng.random(len(t))
    rows = []
    for k in ks:
        draws = [rng.choice(len(t), k, replace=False) for _ in range(repeats)]
        for name, s in objs.items():
            win = np.array([d[np.argmax(s[d])] for d in draws])
            top5 = np.array([truth[d[np.argsort(-s[d])[:5]]].mean(0) for d in draws])
            rows.append(
                {"k": k, "objective": name, **dict(zip(TRUTHS, truth[win].mean(0), strict=True)),
                 **{f"top5_{m}": v for m, v in zip(TRUTHS, top5.mean(0), strict=True)}}
            )  # fmt: skip
        oracle = [truth[d].max(0) for d in draws]
        rows.append(
            {"k": k, "objective": "oracle random search (best of each metric)",
             **dict(zip(TRUTHS, np.mean(oracle, 0), strict=True))}
        )  # fmt: skip
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", type=int, default=600_000)
    p.add_argument("--repeats", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    dev = development_table().drop_duplicates("arch")
    fit = dev[dev["params"] <= args.budget].reset_index(drop=True)
    lines = [
        "# The ranker protocol's objectives: the development evidence",
        "",
        f"Command: `python experiments/protocol_declaration_nb201.py --budget {args.budget} "
        f"--repeats {args.repeats} --seed {args.seed} --out {args.out}`",
        "",
        f"{len(dev)} development cells, {len(fit)} of them within {args.budget:,} parameters at "
        "C=16 N=5. pool = min(min_pool_per_path, 1) / 0.2818, free = free_paths / 0.6191, "
        "naswot = NASWOT / 24.71, paths_nopool / 0.812 (robnas.objectives.scores.SCALES).",
        "",
        "## Kendall tau within equal params, in-budget cells (first draw / fresh draw)",
        "",
        "| within-size formula | clean | fgsm@1 | pgd@1 |",
        "|---|---|---|---|",
    ]
    taus = []
    for name in formulas(fit):
        cells = []
        for truth in TRUTHS:
            per = []
            for draw in DRAWS:
                t = fit[fit["draw"] == draw]
                tau = kendall_within(formulas(t)[name], t[truth], t["params"].tolist())[0]
                per.append(tau)
                taus.append({"formula": name, "draw": draw, "truth": truth, "tau_within": tau})
            cells.append(" / ".join(f"{v:.3f}" for v in per))
        lines.append(f"| {name} | {' | '.join(cells)} |")
    sim = simulate(fit, [10, 30, 100, 300], args.repeats, args.seed)
    lines += [
        "",
        f"## Simulated search: the best of k random in-budget development cells ({args.repeats} "
        "repeats; parameters first, the formula within a size)",
        "",
        "| k | objective | clean | fgsm@1 | pgd@1 | top-5 clean | top-5 fgsm@1 | top-5 pgd@1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sim.to_dict("records"):
        vals = [r[m] for m in TRUTHS] + [r.get(f"top5_{m}", np.nan) for m in TRUTHS]
        text = " | ".join("-" if not np.isfinite(v) else f"{v:.3f}" for v in vals)
        lines.append(f"| {r['k']} | {r['objective']} | {text} |")
    lines += [
        "",
        "## What an optimiser tends to: the top-5 of all in-budget development cells",
        "",
        "| objective | clean | fgsm@1 | pgd@1 | its argmax |",
        "|---|---|---|---|---|",
    ]
    for name, f in formulas(fit).items():
        order = np.argsort(-objective(fit["params"].to_numpy(), f))[:5]
        means = fit.loc[order, list(TRUTHS)].mean()
        lines.append(
            f"| {name} | {' | '.join(f'{means[m]:.3f}' for m in TRUTHS)} | "
            f"`{fit.loc[order[0], 'arch']}` |"
        )
    lines.append("")
    atomic_write_text(args.out / "protocol_declaration_nb201.md", "\n".join(lines))
    atomic_write_text(
        args.out / "protocol_declaration_nb201.csv",
        pd.concat([sim, pd.DataFrame(taus)]).to_csv(index=False, float_format="%.4f"),
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
