"""`robnas search` as a library: resolve and validate settings, then run a tabular or supernet search.

`resolve_settings(...)` checks everything (space, strategy, objective, budget against the space
minimum at the final size, benchmark, data, checkpoint) and returns the JSON settings without
writing anything; `run_search(settings, run_dir, ...)` does the work:

- tabular (`benchmark` set): lookups in the NB201 robustness dataset. One repeat is a durable
  `Study`; `repeats` > 1 runs that many independent searches (seeds derived from `seed`) in
  memory, each of `trials` distinct queries, and reports each returned architecture and the mean.
- supernet: train the weight-sharing supernet at the search size (or load `supernet`), then
  search with the supernet-inherited evaluator (RobNet's protocol) and optionally train the winner.

Queries (tabular): a query is a distinct genotype; proposing an evaluated genotype again is a
cache hit and costs nothing. Isomorphic but different cells count as different queries (a
strategy cannot know they are equal without looking them up).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from robnas.errors import CheckpointError, ConfigError, UnknownName
from robnas.genotype import Genotype
from robnas.io import atomic_write_text
from robnas.result import Result
from robnas.search.study import Progress, Study, init_run_dir
from robnas.space.budget import parse_budget
from robnas.space.search_space import SearchSpace, get_space
from robnas.strategies import STRATEGIES, Strategy, make_budget_predicate, make_strategy
from robnas.strategies.prescreen import Prescreened

log = logging.getLogger(__name__)

SUPERNET_OBJECTIVES = {
    "pgd20_acc": "maximize",
    "clean_acc": "maximize",
    "fsp_dist": "minimize",
    "jac_norm": "minimize",
    "density": "maximize",
    "edge_density": "maximize",
}
#: RobNet searches a smaller supernet than it trains; the search size for each final preset.
SEARCH_SIZE = {"tiny": "tiny", "paper": "small"}


def _direction(key: str) -> str:
    return SUPERNET_OBJECTIVES.get(key, "maximize")


def resolve_settings(
    *,
    space: str = "darts",
    strategy: str = "random",
    trials: int = 20,
    preset: str = "tiny",
    seed: int = 0,
    budget: str | None = None,
    objective: str | None = None,
    benchmark: str | None = None,
    dataset: str = "cifar10",
    data_dir: str | None = None,
    repeats: int = 1,
    supernet: str | None = None,
    final_train: bool = False,
    top_k: int = 5,
    prescreen: str | None = None,
    prescreen_ratio: int = 4,
    train_size: int | None = None,
    val_size: int | None = None,
    epochs: int | None = None,
    finetune_epochs: int | None = None,
) -> dict[str, Any]:
    """Validated, JSON-ready settings of a search; raises a RobnasError, writes nothing."""
    sp = get_space(space)
    STRATEGIES.get(strategy)
    if trials < 1 or repeats < 1 or top_k < 1 or prescreen_ratio < 1:
        raise ConfigError("--trials, --repeats, --top-k and --prescreen-ratio must be at least 1")
    if preset not in ("tiny", "paper"):
        raise UnknownName(f"unknown preset {preset!r}; known: paper, tiny")
    final_macro = sp.resolve_macro(preset if preset in sp.presets else None)
    budget_n = parse_budget(budget) if budget is not None else None
    make_budget_predicate(sp, budget_n, final_macro, dataset)  # BudgetError below the minimum
    settings: dict[str, Any] = {
        "space": sp.name if sp.source.endswith(f"{sp.name}.toml") and "/" not in space else space,
        "strategy": strategy.lower(),
        "trials": trials,
        "preset": preset,
        "seed": seed,
        "budget": budget_n,
        "dataset": dataset,
        "final_macro": final_macro,
        "top_k": top_k,
        "prescreen": prescreen,
        "prescreen_ratio": prescreen_ratio,
    }
    if benchmark is not None:
        from robnas.data.tabular import check_space, load_benchmark, normalize_key

        check_space(sp)
        bench = load_benchmark(benchmark, dataset)
        key = normalize_key(objective or "fgsm@1")
        bench.column(key)
        if prescreen is not None:
            bench.column(prescreen)
        return {
            **settings,
            "mode": "tabular",
            "benchmark": str(bench.root),
            "objective": key,
            "direction": "maximize",
            "repeats": repeats,
            "benchmark_macro": sp.resolve_macro("paper"),
        }
    if repeats != 1:
        raise ConfigError("--repeats needs a tabular search (--benchmark PATH)")
    key = objective or "pgd20_acc"
    if key not in SUPERNET_OBJECTIVES:
        raise UnknownName(
            f"unknown objective {key!r} for a supernet search; known: {', '.join(sorted(SUPERNET_OBJECTIVES))}"
        )
    if prescreen is not None and prescreen not in (
        "fsp_dist",
        "jac_norm",
        "density",
        "edge_density",
    ):
        raise UnknownName(
            f"unknown --prescreen {prescreen!r}; known: density, edge_density, fsp_dist, jac_norm"
        )
    from robnas.config import CANDIDATE_PRESETS, DATA_PRESETS, TRAIN_PRESETS, with_overrides
    from robnas.data.datasets import resolve_data_dir

    if supernet is not None and not Path(supernet).is_file():
        raise CheckpointError(
            f"supernet checkpoint {supernet} not found; train one or drop --supernet"
        )
    resolve_data_dir(data_dir)  # DataError when no local copy can be found
    train_cfg = with_overrides(TRAIN_PRESETS[preset], seed=seed, epochs=epochs)
    train_n, val_n = DATA_PRESETS[preset]
    finetune_n, score_n = CANDIDATE_PRESETS[preset]
    search_preset = SEARCH_SIZE[preset] if SEARCH_SIZE[preset] in sp.presets else None
    ft_epochs = finetune_epochs if finetune_epochs is not None else (1 if preset == "tiny" else 3)
    if ft_epochs < 0:
        raise ConfigError("--finetune-epochs must be >= 0 (0: score inherited weights as they are)")
    finetune = with_overrides(train_cfg, epochs=ft_epochs, warmup_epochs=0.0) if ft_epochs else None
    return {
        **settings,
        "mode": "supernet",
        "objective": key,
        "direction": _direction(key),
        "repeats": 1,
        "search_macro": sp.resolve_macro(search_preset),
        "train": train_cfg.to_dict(),
        "finetune": finetune.to_dict() if finetune is not None else None,
        "train_size": train_size if train_size is not None else train_n,
        "val_size": val_size if val_size is not None else val_n,
        "finetune_size": finetune_n,
        "score_size": score_n,
        "data_dir": data_dir,
        "supernet": str(Path(supernet).resolve()) if supernet else None,
        "final_train": final_train,
    }


# -- shared pieces ---------------------------------------------------------------------------------


def flops_at(space: SearchSpace, macro: dict[str, Any], dataset: str) -> Callable[[Genotype], int]:
    def flops(genotype: Genotype) -> int:
        import torch

        from robnas.data.datasets import dataset_info
        from robnas.indicators import count_flops

        size = dataset_info(dataset).image_size
        with torch.device("meta"):
            model = space.build(genotype, macro, dataset)
        return count_flops(model, (1, 3, size, size))

    return flops


def build_strategy(
    settings: dict[str, Any],
    space: SearchSpace,
    seed: int,
    cheap: Callable[[Genotype], float] | None,
) -> Strategy:
    feasible = make_budget_predicate(
        space, settings["budget"], settings["final_macro"], settings["dataset"]
    )
    strategy = make_strategy(
        settings["strategy"],
        space,
        seed=seed,
        objective=settings["objective"],
        direction=settings["direction"],
        feasible=feasible,
    )
    if cheap is not None:
        return Prescreened(strategy, cheap, ratio=settings["prescreen_ratio"])
    return strategy


# -- tabular ---------------------------------------------------------------------------------------


def repeat_seed(seed: int, repeat: int) -> int:
    return int(np.random.SeedSequence([seed, repeat]).generate_state(1)[0])


def search_once(
    strategy: Strategy, evaluator: Any, queries: int
) -> tuple[str, Result, list[tuple[str, Result]]]:
    """Ask/tell until `queries` distinct genotypes are evaluated; the best one and the history."""
    evaluator.reset()
    results: dict[str, Result] = {}
    history: list[tuple[str, Result]] = []
    idle = 0
    while evaluator.queries < queries and idle < 10_000:
        g = strategy.ask()
        key = g.to_str()
        result = results.get(key) or evaluator.evaluate(g)
        if key not in results:
            results[key] = result
            history.append((key, result))
            idle = 0
        else:
            idle += 1
        strategy.tell(g, result)
    best = max(history, key=lambda kr: strategy.score(kr[1]))
    return best[0], best[1], history


def run_tabular(
    settings: dict[str, Any], run_dir: Path, storage: str | None, progress: Progress | None
) -> dict[str, Any]:
    from robnas.data.tabular import REPORT_KEYS, TabularEvaluator, load_benchmark

    space = get_space(settings["space"])
    bench = load_benchmark(settings["benchmark"], settings["dataset"])
    evaluator = TabularEvaluator(
        bench, space, objective=settings["objective"], macro=settings["benchmark_macro"]
    )
    cheap = None
    if settings["prescreen"]:
        column = settings["prescreen"]
        cheap = lambda g: bench.value(g, column)  # noqa: E731 (a cheaper column ranks candidates)
    final_params = lambda g: space.num_params(g, settings["final_macro"], settings["dataset"])  # noqa: E731
    flops = flops_at(space, settings["final_macro"], settings["dataset"])
    if settings["repeats"] == 1:
        strategy = build_strategy(settings, space, settings["seed"], cheap)
        study = Study(
            run_dir, settings, evaluator, strategy, storage, flops=flops, final_params=final_params
        )
        study.run(settings["trials"], progress=progress)
        return study.summary(settings["top_k"], extra={"queries": evaluator.queries})

    init_run_dir(run_dir, settings)
    repeats: list[dict[str, Any]] = []
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["repeat", "query", "genotype", "status", *evaluator.keys])
    best_so_far: Any = None
    for r in range(settings["repeats"]):
        strategy = build_strategy(settings, space, repeat_seed(settings["seed"], r), cheap)
        key, result, history = search_once(strategy, evaluator, settings["trials"])
        for q, (text, res) in enumerate(history):
            writer.writerow(
                [r, q, text, res.status, *(repr(res.metrics[k]) for k in evaluator.keys)]
            )
        g = Genotype.from_str(key)
        metrics = bench.metrics(g, REPORT_KEYS)
        repeats.append({"repeat": r, "genotype": key, "metrics": metrics})
        if best_so_far is None or result.value(settings["objective"]) > best_so_far[1]:
            best_so_far = (key, result.value(settings["objective"]))
        if progress is not None:
            progress(r + 1, settings["repeats"], None, None)
    atomic_write_text(run_dir / "trials.csv", rows.getvalue())
    keys = list(repeats[0]["metrics"])
    mean = {k: float(np.mean([rep["metrics"][k] for rep in repeats])) for k in keys}
    std = {k: float(np.std([rep["metrics"][k] for rep in repeats])) for k in keys}
    col = bench.table[:, bench.column(settings["objective"])]
    optimum = float(np.nanmax(col))
    best_g = Genotype.from_str(best_so_far[0])
    summary = {
        "settings": settings,
        "objective": {"key": settings["objective"], "direction": "maximize"},
        "queries_per_repeat": settings["trials"],
        "repeats": repeats,
        "mean": mean,
        "std": std,
        "optimum": optimum,
        "found_optimum": float(
            np.mean([rep["metrics"][settings["objective"]] == optimum for rep in repeats])
        ),
        "best": {
            "genotype": best_so_far[0],
            "metrics": bench.metrics(best_g, REPORT_KEYS),
            "num_params": final_params(best_g),
            "flops": flops(best_g),
        },
    }
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2))
    return summary


# -- supernet --------------------------------------------------------------------------------------


def run_supernet(
    settings: dict[str, Any],
    run_dir: Path,
    storage: str | None,
    progress: Progress | None,
    *,
    phase: Callable[[str], None] = lambda _: None,
    show_progress: bool = False,
) -> dict[str, Any]:
    from robnas.config import TrainConfig
    from robnas.data.datasets import load_dataset, split_train_val
    from robnas.evaluators.oneshot import IndicatorEvaluator, SupernetEvaluator
    from robnas.models.samplers import UniformOpSampler
    from robnas.models.supernet import Supernet
    from robnas.training.loop import load_checkpoint, train

    space = get_space(settings["space"])
    dataset, seed = settings["dataset"], settings["seed"]
    macro, final_macro = settings["search_macro"], settings["final_macro"]
    train_cfg = TrainConfig(**settings["train"])
    finetune_cfg = TrainConfig(**settings["finetune"]) if settings["finetune"] else None
    n_train, n_val = settings["train_size"], settings["val_size"]
    limit = n_train + n_val if n_train is not None else None
    data = load_dataset(dataset, "train", data_dir=settings["data_dir"], limit=limit, seed=seed)
    train_data, val_data = split_train_val(data, n_val, seed)  # never the test split

    # A study writes config.json first, so a bad run dir fails before the supernet trains.
    init_run_dir(run_dir, settings)
    model = Supernet(space, macro, dataset)
    ckpt_path = run_dir / "supernet.pt"
    source = settings["supernet"] or (str(ckpt_path) if ckpt_path.is_file() else None)
    if source is not None:
        phase(f"loading supernet {source}")
        ckpt = load_checkpoint(source)
        try:
            model.load_state_dict(ckpt["model"])
        except (RuntimeError, KeyError) as err:
            raise CheckpointError(
                f"{source} does not fit the {space.name} supernet at {macro}: {str(err).splitlines()[0]}"
            ) from None
    else:
        phase("training supernet")
        sampler = UniformOpSampler(space, seed, macro=macro)
        train(
            model,
            train_data,
            val_data,
            train_cfg,
            run_dir / "supernet",
            sampler=sampler,
            resume=True,
            progress=show_progress,
        )
        from robnas.io import atomic_torch_save

        atomic_torch_save(
            ckpt_path,
            {
                "format": "robnas-checkpoint",
                "version": 1,
                "model": model.state_dict(),
                "arch": f"supernet:{space.name}",
                "space": space.name,
                "macro": macro,
                "dataset": dataset,
            },
        )
    device = next(model.parameters()).device
    model.to(device)
    # Each candidate finetunes and is scored on fixed seeded subsets (the same for every candidate).
    ft_n, score_n = settings.get("finetune_size"), settings.get("score_size")
    evaluator = SupernetEvaluator(
        model,
        space,
        train_data.subset(min(ft_n, len(train_data)), seed) if ft_n else train_data,
        val_data.subset(min(score_n, len(val_data)), seed) if score_n else val_data,
        finetune_cfg=finetune_cfg,
        final_macro=final_macro,
        seed=seed,
        batch_size=min(128, train_cfg.batch_size),
    )
    cheap = None
    if settings["prescreen"]:
        from robnas.indicators import INDICATORS

        key = settings["prescreen"]
        sign = float(INDICATORS.get(key).direction) if key in INDICATORS else 1.0
        indicator = IndicatorEvaluator(
            space,
            None,
            val_data.subset(min(64, len(val_data)), seed),
            indicators=[key] if key in ("fsp_dist", "jac_norm") else [],
            supernet=model,
            final_macro=final_macro,
            seed=seed,
        )
        cheap = lambda g: sign * indicator.evaluate(g).metrics[key]  # noqa: E731
    strategy = build_strategy(settings, space, seed, cheap)
    study = Study(
        run_dir,
        settings,
        evaluator,
        strategy,
        storage,
        flops=flops_at(space, final_macro, dataset),
        final_params=lambda g: space.num_params(g, final_macro, dataset),
    )
    phase("searching")
    study.run(settings["trials"], progress=progress)
    extra: dict[str, Any] = {}
    summary = study.summary(settings["top_k"])
    if settings["final_train"] and summary["best"] is not None:
        phase("training the winner")
        extra["final"] = final_train(
            settings, run_dir, summary["best"]["genotype"], train_data, val_data, show_progress
        )
        summary = study.summary(settings["top_k"], extra=extra)
    return summary


def final_train(
    settings: dict[str, Any],
    run_dir: Path,
    genotype: str,
    train_data: Any,
    val_data: Any,
    show_progress: bool,
) -> dict[str, Any]:
    """Train the winner at the final size and attack it with PGD-20 on the test split."""
    import torch

    from robnas.attacks import make_attack
    from robnas.config import TrainConfig
    from robnas.data.datasets import load_dataset
    from robnas.indicators.robust import robust_accuracy
    from robnas.training.loop import train

    space = get_space(settings["space"])
    g = Genotype.from_str(genotype)
    model = space.build(g, settings["final_macro"], settings["dataset"])
    cfg = TrainConfig(**settings["train"])
    train(model, train_data, val_data, cfg, run_dir / "final", resume=True, progress=show_progress)
    test = load_dataset(settings["dataset"], "test", data_dir=settings["data_dir"])
    test = test.subset(min(len(test), settings["val_size"] or len(test)), settings["seed"])
    device = next(model.parameters()).device
    attack = make_attack("pgd20", eps=8 / 255, seed=settings["seed"])
    clean, robust = robust_accuracy(
        model,
        test.floats().to(device),
        test.labels.to(device),
        attack,
        batch_size=128,
        generator=torch.Generator(device=device).manual_seed(settings["seed"]),
    )
    return {"genotype": genotype, "test_images": len(test), "clean_acc": clean, "pgd20_acc": robust}


def run_search(
    settings: dict[str, Any],
    run_dir: str | Path,
    storage: str | None = None,
    progress: Progress | None = None,
    **kw: Any,
) -> dict[str, Any]:
    run_dir = Path(run_dir)
    start = time.perf_counter()
    if settings["mode"] == "tabular":
        summary = run_tabular(settings, run_dir, storage, progress)
    else:
        summary = run_supernet(settings, run_dir, storage, progress, **kw)
    log.info("search finished in %.1fs", time.perf_counter() - start)
    return summary
