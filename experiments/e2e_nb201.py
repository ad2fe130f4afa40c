"""End to end: does `robnas search --budget B` return a robust NB201 cell? Judged on ground truth.

Per seed and strategy this runs the user's command as a subprocess,

    robnas search --space nb201 --budget B --preset tiny --protocol P --objective O \\
        --strategy S --trials N --seed SEED --out DIR/runs/<S>-<P>-<O>-s<SEED>

(CIFAR-10 from ROBNAS_DATA), with a wall-clock limit (default 15 minutes). The search sees a
data folder that holds CIFAR-10 and nothing else (DIR/search-data: a link to the CIFAR-10
folder), so it cannot read the benchmark even by mistake. Only after the search has ended does
this script load the NB201 robustness dataset and look the returned cell (and the search's
top-5) up in it.

Every strategy of one protocol scores the same number of cells (`--trials`: a query is the first
evaluation of an isomorph class), on the same seeds, under the same budget, so the comparison
(the predictor against random search and regularized evolution in network mode) charges each
the same.

Writes, resumably (a search whose row is in the table is not run again):

- DIR/e2e_nb201.csv: `seed`, `budget`, `strategy`, `protocol`, `objective`, `status`, `arch`
  (the returned cell), `wall_s`, `cpu_s` (the search and its children), `cells_scored`,
  `cells_per_cpu_min`, the winner's true `clean` / `fgsm@1` / `pgd@1`, its percentile within
  the budget per metric (`pct_*`: the share of in-budget classes at most as good), the true
  means of the search's top-5 (`top5_*`) and the top-5 itself (`top5_archs`, best first);
- DIR/e2e_nb201.md: the mean per contender beside the references for B
  (robnas.analysis.references: the optimum, oracle random search at the same number of scored
  cells and at 10, the largest-cell rule, a random cell);
- DIR/e2e_nb201.png: the winners (per seed and the mean) beside the references.

    python experiments/e2e_nb201.py --budget 0.6M --seeds 0-4 --out experiments/results/e2e_nb201
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

KEYS = ("clean", "fgsm@1", "pgd@1")
COLUMNS = (
    "seed", "budget", "strategy", "protocol", "objective", "status", "arch", "wall_s", "cpu_s",
    "cells_scored", "cells_per_cpu_min", "clean", "fgsm@1", "pgd@1", "pct_clean", "pct_fgsm@1",
    "pct_pgd@1", "top5_clean", "top5_fgsm@1", "top5_pgd@1", "top5_archs",
)  # fmt: skip
DEFAULT_STRATEGIES = ("random", "regularized_evolution", "predictor")
LIMIT_S = 15 * 60


def parse_seeds(text: str) -> list[int]:
    """`0-4` -> [0, 1, 2, 3, 4]; `0,2,5` -> [0, 2, 5]."""
    seeds: list[int] = []
    for part in text.split(","):
        lo, sep, hi = part.strip().partition("-")
        if not lo.isdigit() or (sep and not hi.isdigit()):
            raise argparse.ArgumentTypeError(f"--seeds takes 0-4 or 0,1,2; got {text!r}")
        seeds += list(range(int(lo), int(hi) + 1)) if sep else [int(lo)]
    return seeds


def search_data_view(data: Path, out: Path) -> Path:
    """A data folder holding only CIFAR-10 (a link to `data`/cifar10): the search's ROBNAS_DATA."""
    view = out / "search-data"
    view.mkdir(parents=True, exist_ok=True)
    link = view / "cifar10"
    target = (data / "cifar10").resolve()
    try:
        link.symlink_to(target, target_is_directory=True)
    except FileExistsError:  # an earlier run, or one started beside this one, made it
        if link.resolve() != target:
            raise SystemExit(f"error: {link} points elsewhere than {target}; remove it") from None
    return view


def run_name(strategy: str, protocol: str, objective: str, seed: int) -> str:
    return f"{strategy}-{protocol}-{objective.replace('@', 'at')}-s{seed}"


def search_argv(
    robnas: Sequence[str],
    *,
    budget: str,
    strategy: str,
    protocol: str,
    objective: str,
    trials: int,
    seed: int,
    out: Path,
    extra: Sequence[str] = (),
) -> list[str]:
    """The user's command, as a user would type it (after `robnas`)."""
    return [
        *robnas, "search", "--space", "nb201", "--budget", budget, "--preset", "tiny",
        "--protocol", protocol, "--objective", objective, "--strategy", strategy,
        "--trials", str(trials), "--seed", str(seed), "--out", str(out), "--no-progress", *extra,
    ]  # fmt: skip


def run_search(argv: list[str], env: dict[str, str], limit_s: float, log: Path) -> dict[str, Any]:
    """Run one search; its wall time, the CPU time of it and its children, and how it ended."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    with log.open("w") as sink:
        proc = subprocess.Popen(
            argv, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code = proc.wait(timeout=limit_s)
            status = "ok" if code == 0 else f"exit {code}"
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the search and anything it started
            proc.wait()
            status = "timeout"
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"status": status, "wall_s": time.perf_counter() - start, "cpu_s": cpu}


def returned_cells(run_dir: Path) -> tuple[list[str], int]:
    """(the search's top-k genotype strings, best first; cells it scored) from its summary."""
    summary = json.loads((run_dir / "summary.json").read_text())
    top = [e["genotype"] for e in summary.get("top_k") or []]
    if not top and summary.get("best"):
        top = [summary["best"]["genotype"]]
    return top, int(summary.get("queries", summary.get("trials", 0)))


def truth_row(bench: Any, refs: Any, top: list[str]) -> dict[str, Any]:
    """The winner's true metrics and percentiles, and the top-5's true means (the dataset is
    read here, after the search ended)."""
    from robnas.genotype import Genotype

    cells = [Genotype.from_str(g) for g in top[:5]]
    truth = np.array([[bench.value(g, k) for k in KEYS] for g in cells])
    row: dict[str, Any] = {"arch": top[0]}
    for j, k in enumerate(KEYS):
        row[k] = float(truth[0, j])
        row[f"pct_{k}"] = refs.percentile(k, float(truth[0, j]))
        row[f"top5_{k}"] = float(truth[:, j].mean())
    return row


def reference_table(refs: Any, cells: Sequence[float]) -> pd.DataFrame:
    """The references for the budget: the optimum, oracle random search at each contender's
    number of scored cells (and at 10), the largest-cell rule, a random in-budget cell."""
    rows = [{"reference": "optimum within the budget", **{k: refs.optimum(k) for k in KEYS}}]
    for k in sorted({int(round(c)) for c in cells if c > 0} | {10}):
        rows.append(
            {
                "reference": f"oracle random search, {k} cells (best of each metric)",
                **{m: refs.oracle_random(m, k) for m in KEYS},
            }
        )
    rows.append(
        {
            "reference": f"the largest cell under the budget (random among "
            f"{refs.largest_ties()} ties)",
            **refs.largest_rule(),
        }
    )
    rows.append({"reference": "a random in-budget cell", **refs.random_cell()})
    return pd.DataFrame(rows)


def contenders(table: pd.DataFrame) -> pd.DataFrame:
    """Mean (and SD over seeds) per strategy, protocol and objective."""
    ok = table[table["status"] == "ok"]
    group = ok.groupby(["strategy", "protocol", "objective"], sort=False)
    mean = group[[*KEYS, *(f"top5_{k}" for k in KEYS), "cells_scored", "wall_s",
                  "cells_per_cpu_min"]].mean()  # fmt: skip
    sd = group[list(KEYS)].std(ddof=1).add_prefix("sd_")
    mean["runs"] = group.size()
    mean["runs_asked"] = table.groupby(["strategy", "protocol", "objective"], sort=False).size()
    return mean.join(sd).reset_index()


def _fmt(v: float) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:.3f}"


def markdown(table: pd.DataFrame, refs: Any, budget: int, command: str, goal: dict) -> str:
    summary = contenders(table)
    ref = reference_table(refs, summary["cells_scored"].tolist())
    lines = [
        "# End to end: what `robnas search` returns on NB201 under a budget",
        "",
        f"Command: `{command}`",
        "",
        f"Budget {budget:,} parameters at the deployed size (C=16, N=5): {refs.classes:,} "
        "isomorph classes of the NB201 robustness dataset fit. Each search ran as a subprocess "
        "on a data folder holding only CIFAR-10; the returned cell was looked up in the dataset "
        "only after the search ended. Means over the seeds (sample SD in brackets); top-5: the "
        "true means of the five best cells the search reports.",
        "",
        "| strategy | protocol | objective | runs | cells scored | wall s | cells / CPU-min "
        "| clean | fgsm@1 | pgd@1 | top-5 clean | top-5 fgsm@1 | top-5 pgd@1 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for d in summary.to_dict("records"):
        vals = " | ".join(f"{_fmt(d[k])} ({_fmt(d['sd_' + k])})" for k in KEYS)
        tops = " | ".join(_fmt(d[f"top5_{k}"]) for k in KEYS)
        lines.append(
            f"| {d['strategy']} | {d['protocol']} | {d['objective']} | {d['runs']} of "
            f"{d['runs_asked']} | {d['cells_scored']:.0f} | {d['wall_s']:.0f} | "
            f"{_fmt(d['cells_per_cpu_min'])} | {vals} | {tops} |"
        )
    lines += [
        "",
        "References for the same budget (exact expectations over the dataset's in-budget classes; "
        "oracle random search keeps the true best of k random cells by each metric separately):",
        "",
        "| reference | clean | fgsm@1 | pgd@1 |",
        "|---|---|---|---|",
    ]
    for r in ref.to_dict("records"):
        lines.append(f"| {r['reference']} | " + " | ".join(_fmt(r[k]) for k in KEYS) + " |")
    largest = refs.largest_rule()
    lines += ["", "## Against the goals", ""]
    for r in summary.to_dict("records"):
        checks = []
        for k, target in goal.items():
            got = r[k]
            beats = got > largest[k]
            checks.append(
                f"{k} {_fmt(got)} (goal >= {target}: {'met' if got >= target else 'not met'}; "
                f"largest-cell rule {_fmt(largest[k])}: {'above' if beats else 'not above'})"
            )
        lines.append(
            f"- {r['strategy']} / {r['protocol']} / {r['objective']}: " + "; ".join(checks)
        )
    failed = table[table["status"] != "ok"]
    if len(failed):
        lines += ["", "Searches that returned no cell (counted in `runs` as missing):", ""]
        for r in failed.itertuples(index=False):
            lines.append(f"- {r.strategy} seed {r.seed}: {r.status}")
    lines.append("")
    return "\n".join(lines)


def plot(table: pd.DataFrame, refs: Any, path: Path) -> None:
    """Three panels (clean, fgsm@1, pgd@1): each contender's winners (dots) and mean (bar),
    beside the references (grey bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from robnas.io import atomic_write_bytes

    summary = contenders(table)
    ok = table[table["status"] == "ok"]
    ref = reference_table(refs, summary["cells_scored"].tolist())
    names = [
        f"{r['strategy']}\n{r['protocol']}, {r['objective']}" for r in summary.to_dict("records")
    ]
    ref_names = [
        r.replace("oracle random search, ", "oracle ")
        .replace(" (best of each metric)", "")
        .replace("the largest cell under the budget", "largest cell")
        .split(" (random")[0]
        for r in ref["reference"]
    ]
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2), sharey=False)
    for ax, key in zip(axes, KEYS, strict=True):
        xs = np.arange(len(names) + len(ref_names))
        ax.bar(xs[: len(names)], summary[key], color="tab:blue", alpha=0.6)
        for i, r in enumerate(summary.to_dict("records")):
            mine = (ok["strategy"] == r["strategy"]) & (ok["protocol"] == r["protocol"])
            seeds = ok[mine & (ok["objective"] == r["objective"])][key]
            ax.plot(np.full(len(seeds), xs[i]), seeds, "k.", ms=6)
        ax.bar(xs[len(names) :], ref[key], color="0.6")
        ax.set_xticks(xs, names + ref_names, rotation=60, ha="right", fontsize=7)
        ax.set_title(f"true {key} of the returned cell")
        lo = min(ref[key].min(), ok[key].min() if len(ok) else 1.0)
        ax.set_ylim(max(0.0, lo - 0.05), min(1.0, ref[key].max() + 0.03))
    fig.suptitle(f"NB201, budget {refs.budget:,} parameters: winners (dots: seeds) vs references")
    fig.tight_layout()
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def has_row(table: pd.DataFrame, key: tuple[int, str, str, str]) -> bool:
    seed, strategy, protocol, objective = key
    mine = (
        (table["seed"] == seed)
        & (table["strategy"] == strategy)
        & (table["protocol"] == protocol)
        & (table["objective"] == objective)
    )
    return bool(mine.any())


def append_row(path: Path, row: dict[str, Any]) -> pd.DataFrame:
    """Add one search's row to the table on disk (read again under a lock, so several
    processes running different strategies into one folder keep every row); the new table."""
    import fcntl

    with (path.parent / ".e2e_nb201.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        table = pd.concat([load_table(path), pd.DataFrame([row])], ignore_index=True)
        table = table.reindex(columns=list(COLUMNS))
        _write(path, table)
    return table


def load_table(path: Path) -> pd.DataFrame:
    if path.exists():
        return pd.read_csv(path)
    return pd.DataFrame(columns=list(COLUMNS))


def command_line(argv: Sequence[str]) -> str:
    return "python experiments/e2e_nb201.py " + " ".join(shlex.quote(a) for a in argv)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--budget", required=True, help="e.g. 0.6M (parameters at C=16 N=5)")
    p.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-4"))
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--strategies", default=",".join(DEFAULT_STRATEGIES))
    p.add_argument("--protocol", default="ranker")
    p.add_argument("--objective", default="fgsm@1")
    p.add_argument("--trials", type=int, default=100, help="cells each search scores")
    p.add_argument("--limit", type=float, default=LIMIT_S, help="wall seconds per search")
    p.add_argument("--data", type=Path, default=os.environ.get("ROBNAS_DATA"))
    p.add_argument("--part", choices=("all", "run", "report"), default="all")
    p.add_argument(
        "--robnas",
        default=f"{sys.executable} -m robnas",
        help="how to start robnas (default: this Python's `-m robnas`)",
    )
    p.add_argument("--search-args", default="", help="more options for every search")
    args = p.parse_args(argv)
    if args.data is None:
        raise SystemExit("error: set ROBNAS_DATA or pass --data (CIFAR-10 and the NB201 dataset)")
    from robnas.space.budget import parse_budget

    budget = parse_budget(args.budget)
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = args.out / "e2e_nb201.csv"
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if args.part in ("all", "run"):
        view = search_data_view(args.data, args.out)
        env = {**os.environ, "ROBNAS_DATA": str(view), "OMP_NUM_THREADS": "1"}
        (args.out / "runs").mkdir(exist_ok=True)
        for seed in args.seeds:
            for strategy in strategies:
                key = (seed, strategy, args.protocol, args.objective)
                if has_row(load_table(csv_path), key):  # this run or another process did it
                    continue
                name = run_name(strategy, args.protocol, args.objective, seed)
                run_dir = args.out / "runs" / name
                cmd = search_argv(
                    shlex.split(args.robnas), budget=args.budget, strategy=strategy,
                    protocol=args.protocol, objective=args.objective, trials=args.trials,
                    seed=seed, out=run_dir, extra=shlex.split(args.search_args),
                )  # fmt: skip
                print(f"[{name}] {' '.join(cmd)}", file=sys.stderr, flush=True)
                ran = run_search(cmd, env, args.limit, args.out / "runs" / f"{name}.log")
                row: dict[str, Any] = dict(zip(("seed", "strategy", "protocol", "objective"), key))
                row |= {"budget": budget, **ran, "cells_scored": 0}
                if ran["status"] == "ok":
                    top, cells = returned_cells(run_dir)
                    row["cells_scored"] = cells
                    row["cells_per_cpu_min"] = cells / (ran["cpu_s"] / 60) if ran["cpu_s"] else None
                    row["arch"] = top[0] if top else None
                    row["top5_archs"] = json.dumps(top[:5])
                table = append_row(csv_path, row)
                print(f"[{name}] {ran['status']} in {ran['wall_s']:.0f}s", file=sys.stderr)
    if args.part in ("all", "report"):
        # the dataset is read only now, after every search has ended
        from robnas.analysis.references import budget_references
        from robnas.data.tabular import load_benchmark
        from robnas.io import atomic_write_text

        bench = load_benchmark(args.data / "nb201-robustness")
        refs = budget_references(bench, budget)
        table = load_table(csv_path)  # every process's rows
        for i, text in table["top5_archs"].items():
            top = json.loads(text) if isinstance(text, str) else []
            if top:
                for k, v in truth_row(bench, refs, top).items():
                    table.loc[i, k] = v
        _write(csv_path, table)
        goal = {"fgsm@1": 0.55, "pgd@1": 0.40}
        atomic_write_text(
            args.out / "e2e_nb201.md", markdown(table, refs, budget, command_line(argv), goal)
        )
        plot(table, refs, args.out / "e2e_nb201.png")
        print((args.out / "e2e_nb201.md").read_text())
    return 0


def _write(path: Path, table: pd.DataFrame) -> None:
    from robnas.io import atomic_write_text

    atomic_write_text(path, table.to_csv(index=False, float_format="%.6g"))


if __name__ == "__main__":
    raise SystemExit(main())
