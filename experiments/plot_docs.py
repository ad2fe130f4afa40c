"""The documentation's figures, drawn from the committed result tables (nothing is trained or
scored here): one PNG beside the tables of each study, under experiments/results/<study>/ (and
benchmarks/results/bench_levers/ for the speed levers).

    python experiments/plot_docs.py                 # every figure whose tables exist
    python experiments/plot_docs.py --only ranking_third_draw main_job_curve

The rank agreement on the figures (Kendall tau over all cells, and pooled within equal parameter
counts) is computed here from the per-cell tables with `robnas.ranking.metrics`, as the studies'
own reports compute it. `nb201_same_params` needs the NB201 robustness dataset (`ROBNAS_DATA` or
`--data`); it is skipped, saying so, without it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import LogNorm  # noqa: E402

from robnas.io import atomic_write_bytes  # noqa: E402
from robnas.objectives.scores import score, score_within  # noqa: E402
from robnas.ranking.metrics import kendall, kendall_within  # noqa: E402
from robnas.ranking.report import params_then_mean_rank  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "experiments" / "results"
BENCHMARKS = REPO / "benchmarks" / "results"
TRUTHS = ("clean", "fgsm@1", "pgd@1")


def save(fig: plt.Figure, path: Path) -> Path:
    """Write the figure atomically (a fixed DPI and no timestamps, so a rerun on the same tables
    gives the same picture)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def taus(values: np.ndarray, truth: np.ndarray, params: np.ndarray) -> tuple[float, float]:
    """Kendall tau over all cells and pooled within equal parameter counts (a signal of -inf,
    NASWOT's for a cell whose output ignores its input, ranks last)."""
    with np.errstate(invalid="ignore"):
        return kendall(values, truth), kendall_within(values, truth, params.tolist())[0]


# -- the third draw: the declared rankers against the dataset --------------------------------------


def ranking_third_draw(results: Path) -> Path:
    table = pd.read_csv(results / "ranking_third_draw" / "ranking_third_draw.csv")
    params = table["params"].to_numpy()
    within = np.array(
        [score_within(n, p) for n, p in zip(table["naswot"], table["paths_nopool"], strict=True)]
    )
    scalar = np.array(
        [score(*cell) for cell in zip(params, table["naswot"], table["paths_nopool"], strict=True)]
    )
    rng = np.random.default_rng(0)  # jitter for the discrete robust_score only (display)
    robust = table["robust_score"].to_numpy()
    # (name, the ranker's values for tau, the values drawn, truth, y label)
    panels = [
        ("#params", params, params, "clean", "parameters (deployed, C=16 N=5)"),
        ("score", scalar, within, "clean", "score's within-size term"),
        ("robust_score", robust, robust, "fgsm@1", "robust_score (jittered)"),
        ("robust_score", robust, robust, "pgd@1", "robust_score (jittered)"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    norm = LogNorm(params.min(), params.max())
    for ax, (name, values, drawn, truth, ylabel) in zip(axes, panels, strict=True):
        t = table[truth].to_numpy()
        overall, inside = taus(values, t, params)
        shown = drawn + (rng.uniform(-0.12, 0.12, len(drawn)) if name == "robust_score" else 0)
        points = ax.scatter(100 * t, shown, c=params, cmap="viridis", norm=norm, s=9, alpha=0.8)
        inside_text = "-" if name == "#params" else f"{inside:.3f}"
        ax.set_title(f"{name} vs {truth}\ntau {overall:.3f} overall, {inside_text} within")
        ax.set_xlabel(f"{truth} (%), dataset")
        ax.set_ylabel(ylabel)
        if name == "#params":
            ax.set_yscale("log")
    fig.colorbar(points, ax=axes, label="parameter group (#params)", fraction=0.02, pad=0.01)
    fig.suptitle(
        f"Third draw: {len(table)} NB201 isomorph classes scored after the rankers were declared; "
        "colour = parameter count (a budgeted search compares cells of one colour)",
        y=1.04,
    )
    return save(fig, results / "ranking_third_draw" / "ranking_scatter.png")


# -- the main job's supernet learning curve --------------------------------------------------------


def main_job_curve(results: Path) -> Path:
    folder = results / "main_job_curve"
    curve = pd.read_csv(folder / "curve.csv")
    meta = json.loads((folder / "curve.json").read_text())
    train = meta["train"]
    steps = curve[curve["kind"] == "step"].sort_values("step")
    val = curve[curve["kind"] == "val"].sort_values("step")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    clean_end = train["clean_epochs"] / train["epochs"]
    ramp_end = clean_end + train["eps_ramp_epochs"] / train["epochs"]
    for ax in (top, bottom):
        ax.axvspan(0, clean_end, color="0.93")
        ax.axvspan(clean_end, ramp_end, color="0.97")
    smooth = steps["train_loss"].rolling(5, min_periods=1, center=True).mean()
    top.plot(steps["fraction"], steps["train_loss"], color="0.7", lw=0.6, label="one step")
    top.plot(steps["fraction"], smooth, color="C0", lw=1.5, label="mean of 5 reports")
    top.set_ylabel("training loss")
    top.text(
        clean_end / 2, 0.97, "clean", ha="center", va="top", transform=top.get_xaxis_transform()
    )
    top.text(
        (clean_end + ramp_end) / 2,
        0.97,
        "FGSM-RS, eps rising",
        ha="center",
        va="top",
        transform=top.get_xaxis_transform(),
    )
    top.text(
        (ramp_end + 1) / 2, 0.97, "FGSM-RS at 8/255", ha="center", va="top",
        transform=top.get_xaxis_transform(),
    )  # fmt: skip
    top.legend(loc="lower left", frameon=False)
    bottom.plot(val["fraction"], 100 * val["clean_acc"], "o-", color="C2", label="clean")
    bottom.plot(val["fraction"], 100 * val["robust_acc"], "s-", color="C3", label="PGD-10 (8/255)")
    for _, row in val.tail(1).iterrows():
        for key in ("clean_acc", "robust_acc"):
            bottom.annotate(
                f"{100 * row[key]:.1f}%", (row["fraction"], 100 * row[key]),
                textcoords="offset points", xytext=(-4, 6), ha="right",
            )  # fmt: skip
    bottom.set_ylabel(f"held-out accuracy (%), {meta['val_images']} images")
    bottom.set_xlabel(
        f"fraction of the pass ({meta['steps']:,} steps of batch {train['batch_size']}, "
        f"{meta['train_images']:,} images)"
    )
    bottom.legend(loc="upper left", frameon=False)
    bottom.set_ylim(bottom=0)
    fig.suptitle("The main job's supernet (darts, tiny preset): one pass, validated inside it")
    return save(fig, folder / "curve.png")


# -- one-shot ranking: training length ---------------------------------------------------------------


def oneshot_rank_nb201(results: Path) -> Path:
    folder = results / "oneshot_rank_nb201"
    runs = [(8, "oneshot_rank_nb201"), (32, "oneshot_rank_nb201_long")]
    runs += [(64, "oneshot_rank_nb201_64"), (128, "oneshot_rank_nb201_128")]
    rows = []
    for epochs, name in runs:
        cells = pd.read_csv(folder / f"{name}.csv")
        params = cells["params"].to_numpy()
        for truth in TRUTHS:
            t = cells[f"true_{truth}"].to_numpy()
            overall, inside = taus(cells["clean"].to_numpy(), t, params)
            baseline = kendall(params, t)
            rows.append((epochs, truth, overall, inside, baseline))
    data = pd.DataFrame(rows, columns=["epochs", "truth", "overall", "within", "params"])
    fig, axes = plt.subplots(1, 3, figsize=(14, 4), sharey=True)
    for ax, truth in zip(axes, TRUTHS, strict=True):
        part = data[data["truth"] == truth]
        ax.plot(part["epochs"], part["overall"], "o-", label="supernet, over all cells")
        ax.plot(part["epochs"], part["within"], "s-", label="supernet, within equal #params")
        ax.axhline(part["params"].iloc[0], color="k", ls="--", lw=1, label="#params (baseline)")
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xticks([8, 32, 64, 128], ["8", "32", "64", "128"])
        ax.set_title(f"against {truth}")
        ax.set_xlabel("supernet training epochs (clean, C=8 N=1)")
    axes[0].set_ylabel("Kendall tau, 500 NB201 cells")
    axes[0].legend(frameon=False, loc="lower right")
    fig.suptitle(
        "Does a longer-trained NB201 supernet rank cells? (its clean accuracy as the score)"
    )
    return save(fig, folder / "training_length.png")


# -- combined rankers --------------------------------------------------------------------------------


def combine_nb201(results: Path) -> Path:
    folder = results / "combine_nb201"
    cells = pd.read_csv(folder / "combine_nb201_triple.csv")
    params = cells["params"].to_numpy()
    rankers = [
        "params+supernet",
        "params+naswot",
        "params+-jac_norm",
        "params+(supernet,naswot)",
        "params+(supernet,naswot,-jac_norm)",
    ]
    fig, axes = plt.subplots(1, 2, figsize=(14, 4.2))
    width = 0.8 / len(rankers)
    x = np.arange(len(TRUTHS))
    base = [kendall(params, cells[t].to_numpy()) for t in TRUTHS]
    for i, name in enumerate(rankers):
        overall, inside = zip(
            *(taus(cells[name].to_numpy(), cells[t].to_numpy(), params) for t in TRUTHS),
            strict=True,
        )
        gain = [o - b for o, b in zip(overall, base, strict=True)]
        axes[0].bar(x + (i - 2) * width, gain, width, label=name)
        axes[1].bar(x + (i - 2) * width, inside, width, label=name)
    axes[0].set_title("overall tau minus #params' tau (above 0: beats counting parameters)")
    axes[1].set_title("tau within equal parameter counts")
    for ax in axes:
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xticks(x, [f"vs {t}" for t in TRUTHS])
    axes[1].legend(frameon=False, fontsize=8, loc="upper right")
    fig.suptitle("Combined rankers on 500 NB201 cells (32-epoch supernet; NASWOT at C=16 N=5)")
    return save(fig, folder / "rankers.png")


# -- supernet seeds ------------------------------------------------------------------------------------


def supernet_seeds_nb201(results: Path) -> Path:
    folder = results / "supernet_seeds_nb201"
    cells = pd.read_csv(folder / "supernet_seeds_nb201.csv")
    params = cells["params"].to_numpy()
    truth = cells["clean"].to_numpy()
    names = [c for c in cells.columns if c.startswith("sn:")]
    naswot = cells["naswot"].to_numpy()
    alone, paired = [], []
    for name in names:
        supernet = cells[name].to_numpy()
        alone.append(taus(supernet, truth, params)[1])
        paired.append(taus(params_then_mean_rank(params, supernet, naswot), truth, params)[1])
    reference = taus(params_then_mean_rank(params, naswot), truth, params)[1]
    fig, ax = plt.subplots(figsize=(8, 4))
    x = np.arange(len(names))
    ax.bar(x - 0.2, alone, 0.4, label="the supernet alone")
    ax.bar(x + 0.2, paired, 0.4, label="params+(supernet,naswot)")
    ax.axhline(
        reference, color="k", ls="--", lw=1, label=f"params+naswot, no supernet ({reference:.3f})"
    )
    ax.set_xticks(x, [n.removeprefix("sn:") for n in names])
    ax.set_ylabel("Kendall tau within equal #params, vs clean")
    ax.set_xlabel("supernet (same recipe, 32 epochs; cli = trained by robnas supernet train)")
    ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=3, fontsize=8)
    ax.set_ylim(0, 0.65)
    ax.set_title("Six supernets of one recipe on the same 500 NB201 cells")
    return save(fig, folder / "seeds.png")


# -- indicators against eps ----------------------------------------------------------------------------


def markdown_table(text: str, first_header: str) -> pd.DataFrame:
    """The markdown table whose header row starts with `| first_header |` (as the experiment
    scripts write them), its cells as strings."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"| {first_header} |"):
            header = [c.strip() for c in line.strip("|").split("|")]
            body = []
            for row in lines[i + 2 :]:
                if not row.startswith("|"):
                    break
                body.append([c.strip() for c in row.strip("|").split("|")])
            return pd.DataFrame(body, columns=header)
    raise ValueError(f"no table starting with '| {first_header} |'")


def indicators_nb201(results: Path) -> Path:
    folder = results / "indicators_nb201"
    table = markdown_table((folder / "indicators_nb201.md").read_text(), "target")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), sharey=True)
    for ax, attack in zip(axes, ("fgsm", "pgd"), strict=True):
        part = table[table["target"].str.startswith(f"{attack}@")]
        eps = part["target"].str.split("@").str[1].astype(float)
        for column, style in (
            ("params", "k--"),
            ("-jac_norm", "o-"),
            ("-hessian_eig", "s-"),
            ("-jac_norm within equal params", "o:"),
            ("-hessian_eig within equal params", "s:"),
        ):
            ax.plot(eps, part[column].astype(float), style, label=column)
        ax.set_xscale("log")
        ax.set_xlabel(f"{attack.upper()} eps (x/255)")
        ax.set_title(f"against {attack}@eps")
    axes[0].set_ylabel("Kendall tau, 200 NB201 cells")
    axes[1].legend(frameon=False, fontsize=8)
    fig.suptitle(
        "Training-free indicators at initialisation (C=16 N=1, 32 images) vs counting parameters"
    )
    return save(fig, folder / "indicators_eps.png")


# -- same params, different robustness (needs the dataset) -------------------------------------------


def nb201_same_params(results: Path, data: Path | None) -> Path | None:
    if data is None:
        print("nb201_same_params: skipped (set ROBNAS_DATA or pass --data)")
        return None
    from robnas.analysis.nb201 import same_params_study

    study = same_params_study(data / "nb201-robustness")
    values = study.table["mean_adv_acc"].to_numpy()
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.hist(values, bins=25, color="C0", edgecolor="white")
    ax.set_xlabel("mean adversarial accuracy (%): FGSM, PGD, APGD-CE, Square at eps <= 8/255")
    ax.set_ylabel("NB201 cells")
    ax.set_title(
        f"{len(values)} NB201 cells with the same parameter count (559,386): "
        f"{values.min():.1f}% to {values.max():.1f}%"
    )
    return save(fig, results / "nb201_same_params" / "same_params_hist.png")


# -- macro depth and width -------------------------------------------------------------------------


def macro_depth_width(results: Path) -> Path:
    folder = results / "macro_depth_width"
    table = pd.read_csv(folder / "macro_depth_width.csv")
    fig, ax = plt.subplots(figsize=(8, 3.8))
    x = np.arange(len(table))
    for offset, key, label in ((-0.2, "clean_acc", "clean"), (0.2, "pgd20_acc", "PGD-20 (8/255)")):
        p = table[key].to_numpy()
        se = np.sqrt(p * (1 - p) / table["test_images"].to_numpy())
        ax.bar(x + offset, 100 * p, 0.4, yerr=200 * se, capsize=3, label=f"{label} (+-2 SE)")
    ax.set_ylim(0, 45)
    ax.set_xticks(x, [f"{n}\n{d}" for n, d in zip(table["name"], table["depths"], strict=True)])
    ax.set_ylabel("accuracy (%) on 500 test images")
    ax.legend(frameon=False, loc="upper right")
    ax.set_title("Five WRNs of ~0.37M parameters, FGSM-RS 5 epochs on 2,000 images, one seed each")
    return save(fig, folder / "macro_depth_width.png")


# -- supernet learning speed ---------------------------------------------------------------------------


def supernet_learning_speed(results: Path) -> Path:
    folder = results / "supernet_learning_speed"
    everything = pd.read_csv(folder / "variants.csv")
    alone = everything[everything["run"] == "standalone"].iloc[0]
    table = everything[everything["run"] == "sampled"]
    means = table.groupby("variant", sort=False)[["clean_acc", "robust_acc"]].mean()
    counts = table.groupby("variant", sort=False).size()
    order = means.sort_values("clean_acc").index
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(order) + 1.5))
    y = np.arange(len(order))
    ax.barh(y + 0.2, 100 * means.loc[order, "clean_acc"], 0.4, label="clean")
    ax.barh(y - 0.2, 100 * means.loc[order, "robust_acc"], 0.4, label="PGD-10 (8/255)")
    for key, colour in (("clean_acc", "C0"), ("robust_acc", "C1")):
        ax.axvline(100 * alone[key], color=colour, ls="--", lw=1)
    ax.plot([], [], "k--", lw=1, label="one path trained alone (batch 128)")
    labels = [
        f"{name.removeprefix('supernet_learning_speed').strip('_') or 'first (batch 128)'}"
        + (f" (mean of {counts[name]})" if counts[name] > 1 else "")
        for name in order
    ]
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel("held-out accuracy (%), 500 images, after the supernet's training")
    ax.legend(frameon=False, loc="lower right")
    ax.set_title("darts supernet variants, sampled paths (settings per row: variants.csv)")
    return save(fig, folder / "variants.png")


# -- speed levers ------------------------------------------------------------------------------------


def bench_levers(benchmarks: Path) -> Path:
    folder = benchmarks / "bench_levers"
    levers = json.loads((folder / "levers.txt").read_text().strip().splitlines()[-1])
    isa = json.loads((folder / "isa.txt").read_text().strip().splitlines()[-1])
    levers["isa"] = isa["isa"]  # the CPU-seconds rerun (levers.txt's isa row measured the load)
    # python_overhead compares batch sizes (how much of a step is not per-image work), not a change
    names = [k for k in levers if not k.startswith("_") and k != "python_overhead"]
    ratios = [levers[k]["before_s"] / levers[k]["after_s"] for k in names]
    order = np.argsort(ratios)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    y = np.arange(len(names))
    values = np.array(ratios)[order]
    ax.barh(y, values, color=["C2" if v > 1 else "C3" for v in values])
    labels = [
        f"{levers[n]['after']} (vs {levers[n]['before']})"
        + (", wall" if levers[n]["unit"].startswith("wall") else "")
        for n in (names[i] for i in order)
    ]
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xscale("log")
    ax.axvline(1, color="k", lw=0.8)
    for yi, v in zip(y, values, strict=True):
        ax.text(v, yi, f" {v:.2f}x", va="center", fontsize=8)
    ax.set_xlabel(
        "before / after (> 1: the change is faster), CPU seconds unless the row says wall"
    )
    ax.set_title("Speed levers of the main job, measured side by side (one thread, loaded machine)")
    return save(fig, folder / "levers.png")


# -- export survey -----------------------------------------------------------------------------------


def export_pt2_survey(results: Path) -> Path:
    folder = results / "export_pt2_survey"
    table = pd.read_csv(folder / "export_pt2_survey.csv")
    fig, ax = plt.subplots(figsize=(7, 4))
    for kind, part in table.groupby("kind"):
        ax.scatter(part["num_params"], part["seconds"], label=f"{kind} ({len(part)})", s=20)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("parameters")
    ax.set_ylabel("seconds to export and verify (loaded machine)")
    ok = int((table["status"] == "ok").sum())
    worst = table["max_abs_diff"].max()
    ax.set_title(
        f"torch.export (pt2): {ok} of {len(table)} exported, largest logit difference {worst:g}"
    )
    ax.legend(frameon=False, fontsize=8)
    return save(fig, folder / "export_pt2_survey.png")


FIGURES: dict[str, Callable[[argparse.Namespace], Path | None]] = {
    "ranking_third_draw": lambda a: ranking_third_draw(a.results),
    "main_job_curve": lambda a: main_job_curve(a.results),
    "oneshot_rank_nb201": lambda a: oneshot_rank_nb201(a.results),
    "combine_nb201": lambda a: combine_nb201(a.results),
    "supernet_seeds_nb201": lambda a: supernet_seeds_nb201(a.results),
    "indicators_nb201": lambda a: indicators_nb201(a.results),
    "nb201_same_params": lambda a: nb201_same_params(a.results, a.data),
    "macro_depth_width": lambda a: macro_depth_width(a.results),
    "supernet_learning_speed": lambda a: supernet_learning_speed(a.results),
    "bench_levers": lambda a: bench_levers(a.benchmarks),
    "export_pt2_survey": lambda a: export_pt2_survey(a.results),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = os.environ.get("ROBNAS_DATA")
    parser.add_argument("--data", type=Path, default=Path(data) if data else None)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--benchmarks", type=Path, default=BENCHMARKS)
    parser.add_argument("--only", nargs="+", choices=sorted(FIGURES), default=None)
    args = parser.parse_args(argv)
    for name in args.only or FIGURES:
        path = FIGURES[name](args)
        if path is not None:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
