"""`robnas search`: search a space under a parameter budget (supernet, macro or tabular NB201).

Every flag becomes its value once, here (`request_of`: a `SearchRequest` of `robnas.specs`
values); the library resolves it into the mode's settings and runs the one pipeline.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robnas.cli._common import PRESET_HELP, add_data_arguments, data_spec
from robnas.config import METHODS
from robnas.specs import DEFAULT_EPS, Budget, Eps, Objective, Size

if TYPE_CHECKING:
    from robnas.search.request import SearchRequest
    from robnas.search.settings import SearchSettings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "search",
        help="search architectures (supernet + strategy, or the tabular NB201 benchmark)",
        description="Search a cell space under a parameter budget. With --benchmark, look "
        "architectures up in the NB201 robustness dataset instead of training; a macro space "
        "(--space wrn) trains each candidate at a proxy.",
    )
    p.add_argument("--space", default="darts", help="space name or TOML file (default: darts)")
    p.add_argument(
        "--budget",
        help="max parameters of the deployed network (--final-size, default the paper size), e.g. 5M",
    )
    p.add_argument(
        "--flops-budget",
        help="max multiply-adds of the deployed network, e.g. 5G (macro spaces: --space wrn)",
    )
    p.add_argument(
        "--final-size",
        metavar="SIZE",
        help="size of the deployed network the budget binds and --final-train trains: a size "
        "name (tiny, small, paper) or C=36,layers=20 (default: paper, whatever the proxy)",
    )
    p.add_argument(
        "--size",
        metavar="SIZE",
        help="the proxy the supernet (or each macro candidate) trains and is scored at: a size "
        "name or C=8,layers=5 (default: the preset's, tiny for --preset tiny)",
    )
    p.add_argument(
        "--strategy",
        default="random",
        help="random, regularized_evolution, local_search, tpe, nsga2, surrogate",
    )
    p.add_argument(
        "--trials",
        type=int,
        help="evaluated architectures (default: the preset's, tiny 10, paper 1000 as RobNet; "
        "tabular: 100 queries per repeat)",
    )
    p.add_argument("--preset", default=None, help=f"{PRESET_HELP} (default: tiny; tabular: paper)")
    p.add_argument("--out", help="run directory (default: runs/search-<space>-<time>)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--resume",
        metavar="RUN",
        help="continue RUN with its own settings (also: join it as another worker)",
    )
    p.add_argument(
        "--storage",
        help="Optuna storage URL (default: sqlite in the run dir; journal:PATH for a journal file)",
    )
    p.add_argument("--supernet", metavar="CKPT", help="reuse a trained supernet checkpoint")
    p.add_argument("--final-train", action="store_true", help="train the winner and attack it")
    p.add_argument(
        "--benchmark", metavar="PATH", help="NB201 robustness dataset folder (tabular search)"
    )
    p.add_argument(
        "--protocol",
        choices=("ranker", "lowfi", "supernet"),
        help="how an NB201 network search scores cells: ranker (NASWOT at the deployed size and "
        "the cell's path counts, no training), lowfi (a short normal training, then FGSM and PGD "
        "at 1/255 on held-out images) or supernet (the default: the supernet search); ranker and "
        "lowfi take --objective clean, fgsm@1 or pgd@1",
    )
    p.add_argument(
        "--objective",
        help="what to optimise: clean, fgsm@1, pgd@8 (eps in 1/255: a dataset column in a "
        "tabular search, measured on held-out images in a network search), or a metric key "
        "(pgd20_acc, fsp_dist, ...); default: pgd20_acc (tabular: fgsm@1)",
    )
    p.add_argument(
        "--method",
        choices=METHODS,
        help="how the supernet and the candidates train (default: the preset's; clean: "
        "without an attack, as the NB201 robustness dataset's networks were)",
    )
    p.add_argument("--repeats", type=int, default=1, help="independent tabular searches")
    p.add_argument("--dataset", default="cifar10")
    add_data_arguments(p)
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument(
        "--prescreen",
        metavar="KEY",
        help="rank proposals by this cheap score first (multi-fidelity)",
    )
    p.add_argument("--prescreen-ratio", type=int, default=4, help="proposals per full evaluation")
    p.add_argument("--train-size", type=int, help="training images (default: preset)")
    p.add_argument("--val-size", type=int, help="held-out validation images (default: preset)")
    p.add_argument("--epochs", type=int, help="supernet training epochs (default: preset)")
    p.add_argument(
        "--finetune-epochs",
        type=int,
        help="per-candidate finetune epochs (default: tiny 1, paper 3)",
    )
    p.add_argument(
        "--eps", help=f"Linf radius of the objective's PGD attack (default: {DEFAULT_EPS})"
    )
    p.add_argument(
        "--attack-steps",
        type=int,
        help="steps of the objective's PGD attack (default: 20; the objective is then "
        "pgd<steps>_acc)",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def request_of(args: argparse.Namespace) -> SearchRequest:
    """The flags as one SearchRequest: each parsed once into its value."""
    from robnas.search.request import SearchRequest

    return SearchRequest(
        space=args.space,
        strategy=args.strategy,
        preset=args.preset,
        objective=Objective.parse(args.objective) if args.objective is not None else None,
        budget=Budget.parse(args.budget, args.flops_budget),
        size=Size.parse(args.size) if args.size is not None else None,
        final_size=Size.parse(args.final_size) if args.final_size is not None else None,
        data=data_spec(args, args.dataset),
        eps=Eps.parse(args.eps) if args.eps is not None else None,
        attack_steps=args.attack_steps,
        method=args.method,
        epochs=args.epochs,
        finetune_epochs=args.finetune_epochs,
        trials=args.trials,
        seed=args.seed,
        top_k=args.top_k,
        prescreen=args.prescreen,
        prescreen_ratio=args.prescreen_ratio,
        repeats=args.repeats,
        benchmark=args.benchmark,
        protocol=args.protocol,
        supernet=args.supernet,
        final_train=args.final_train,
        storage=args.storage,
    )


def _settings(args: argparse.Namespace) -> tuple[SearchSettings, Path, str | None]:
    from robnas.search.pipeline import resolve_settings
    from robnas.search.rundir import RunDir

    if args.resume:
        run_dir = Path(args.resume)
        stored = RunDir(run_dir).read_settings()
        if args.trials is not None:
            stored = stored.replace(trials=args.trials)
        return stored, run_dir, args.storage or stored.storage
    settings = resolve_settings(request_of(args))
    out = args.out or f"runs/search-{Path(str(args.space)).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
    return settings, Path(out), args.storage


def run(args: argparse.Namespace) -> int:
    from robnas.cli.train import ProgressBar  # the trainer's epoch bars, as `robnas train` draws
    from robnas.estimate import search_estimate
    from robnas.search.pipeline import run_search
    from robnas.search.rundir import RunDir
    from robnas.search.settings import SupernetSettings

    settings, run_dir, storage = _settings(args)
    RunDir(run_dir).check(settings)  # a run dir of another configuration: refuse, write nothing
    bar = None
    if not args.no_progress:
        from tqdm import tqdm

        repeats = getattr(settings, "repeats", 1)
        total = repeats if repeats > 1 else settings.trials
        unit = "repeat" if repeats > 1 else "trial"
        bar = tqdm(total=total, unit=unit, desc="search", file=sys.stderr, dynamic_ncols=True)

    def progress(done: int, total: int, record: Any, best: Any) -> None:
        if bar is None:
            return
        bar.n = done
        if best is not None:
            value = best.result.metrics.get(settings.objective, float("nan"))
            bar.set_postfix_str(f"best {settings.objective} {value:.4f}")
        bar.refresh()

    def phase(text: str) -> None:
        if bar is not None:
            bar.set_description(text)
        else:
            print(text, file=sys.stderr)

    train_progress: Any = ProgressBar() if bar is not None else None
    if isinstance(settings, SupernetSettings) and settings.supernet is None:  # after a minute

        def say(text: str) -> None:  # stderr, above the bars when they are drawn
            (bar.write if bar is not None else print)(text, file=sys.stderr)

        train_progress = search_estimate(settings, emit=say, then=train_progress)
    try:
        summary = run_search(
            settings,
            run_dir,
            storage,
            progress,
            phase=phase,
            train_progress=train_progress,
        )
    finally:
        if bar is not None:
            bar.close()
    _print(summary, settings, run_dir)
    return 0


def _print(summary: dict[str, Any], settings: SearchSettings, run_dir: Path) -> None:
    from robnas.search.settings import SupernetSettings
    from robnas.specs import format_count

    key = settings.objective
    repeats = summary.get("repeats")
    if isinstance(repeats, list):
        agg = summary.get("aggregate") or summary  # summaries before the one shape: top level
        mean, std = agg["mean"], agg["std"]
        print(
            f"{len(repeats)} searches x {settings.trials} queries ({settings.strategy}, objective {key})"
        )
        for k in mean:
            print(f"  {k:<14} {100 * mean[k]:6.2f} +- {100 * std[k]:.2f}")
        print(
            f"  optimum {key} {100 * agg['optimum']:.2f}, found in {100 * agg['found_optimum']:.0f}% of the searches"
        )
    else:
        rows = summary.get("top_k") or []
        # a protocol's objective is the parameter count plus a within-size term below 1: show it
        digits = 6 if settings.mode == "protocol" else 4
        proxy = "proxy params" if settings.mode in ("supernet", "macro") else ""
        print(f"{'rank':>4}  {key:>12}  {'params':>10}  {proxy:>12}  {'flops':>12}  genotype")
        for i, r in enumerate(rows, 1):
            value = r["metrics"].get(key, float("nan"))
            flops = "" if r.get("flops") is None else f"{r['flops']:,}"
            small = "" if r.get("proxy_num_params") is None else f"{r['proxy_num_params']:,}"
            print(
                f"{i:>4}  {value:>12.{digits}f}  {r['num_params']:>10,}  {small:>12}  {flops:>12}  {r['genotype']}"
            )
        if isinstance(settings, SupernetSettings):
            print(
                f"params at the final size {settings.final_size} "
                f"({_macro_text(settings.final_macro)}); proxy "
                f"({_macro_text(settings.search_macro)}); objective at eps {settings.eps}, "
                f"{_attack_text(settings)}"
            )
        if settings.mode == "protocol":
            print(_throughput(settings, run_dir))
        if f := summary.get("final"):
            keys = [k for k in f if k.endswith("_acc") and k != "clean_acc"]
            robust = keys[0] if keys else None
            print(
                f"winner trained: clean {f['clean_acc']:.4f}, {robust} {f[robust] if robust else float('nan'):.4f} "
                f"on {f['test_images']} test images"
            )
    budget = summary.get("budget") or {}
    if budget.get("limit") is not None:
        print(
            f"budget {format_count(budget['limit'])} at the final size: "
            f"{budget.get('rejected_distinct', 0)} proposed architectures rejected "
            f"({budget.get('rejected', 0)} proposals)"
        )
    print(f"wrote {run_dir}/summary.json")


def _throughput(settings: Any, run_dir: Path) -> str:
    """The protocol, its declared objective, and the cells scored per CPU-minute."""
    from robnas.objectives.protocols import definition
    from robnas.search.rundir import RunDir

    trials = RunDir(run_dir).read_trials()
    cpu = float(trials["cpu_s"].sum()) if "cpu_s" in trials else float("nan")
    rate = len(trials) / (cpu / 60) if cpu > 0 else float("nan")
    return (
        f"objective: {definition(settings.protocol, settings.target)}\n"
        f"{len(trials)} cells scored, {rate:.1f} per CPU-minute of scoring"
    )


def _macro_text(macro: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in macro.items() if k in ("C", "layers", "N"))


def _attack_text(settings: Any) -> str:
    attack = settings.attack
    return f"PGD-{attack.steps}" if attack.name == "pgd" else attack.name.upper()


__all__ = ["register", "run"]
