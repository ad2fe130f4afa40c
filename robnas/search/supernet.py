"""Supernet searches: train (or load) the weight-sharing supernet at the proxy size, search with
inherited weights under a budget on the final (deployed) size, optionally train the winner."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from robnas.genotype import Genotype
from robnas.search.common import BudgetGate, build_strategy, flops_at
from robnas.search.rundir import RunDir
from robnas.search.settings import SearchSettings, robust_key
from robnas.search.study import Progress, Study
from robnas.space.search_space import get_space

log = logging.getLogger(__name__)


def run_supernet(
    settings: SearchSettings,
    run_dir: Path,
    storage: str | None,
    progress: Progress | None,
    *,
    phase: Callable[[str], None] = lambda _: None,
    train_progress: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    from robnas.checkpoint import (
        load_checkpoint,
        load_state,
        save_checkpoint,
        split_record,
        unseen_images,
    )
    from robnas.config import TrainConfig
    from robnas.data.datasets import load_dataset, split_train_val
    from robnas.evaluators.indicator import IndicatorEvaluator
    from robnas.evaluators.supernet import SupernetEvaluator
    from robnas.models.samplers import make_sampler
    from robnas.models.supernet import Supernet
    from robnas.training.loop import train

    space = get_space(settings.space)
    dataset, seed = settings.dataset, settings.seed
    macro, final_macro = dict(settings.search_macro or {}), settings.final_macro
    train_cfg = TrainConfig(**(settings.train or {}))
    finetune_cfg = TrainConfig(**settings.finetune) if settings.finetune else None
    n_train, n_val = settings.train_size, settings.val_size or 0
    limit = n_train + n_val if n_train is not None else None
    data = load_dataset(dataset, "train", data_dir=settings.data_dir, limit=limit, seed=seed)
    train_data, val_data = split_train_val(data, n_val, seed)  # never the test split

    ckpt_path = run_dir / "supernet.pt"
    source = settings.supernet or (str(ckpt_path) if ckpt_path.is_file() else None)
    ckpt = load_checkpoint(source) if source is not None else None
    if ckpt is not None:  # score only on images the supernet never trained on, or refuse now
        need = min(settings.score_size or len(val_data), len(val_data))
        val_data = unseen_images(ckpt, val_data, str(source), dataset=dataset, need=need)
    # config.json first, so a bad run dir fails before the supernet trains.
    RunDir(run_dir).init(settings)
    model = Supernet(space, macro, dataset)
    if ckpt is not None:
        phase(f"loading supernet {source}")
        load_state(model, ckpt["model"], str(source))
    else:
        phase("training supernet")
        sampler = make_sampler(train_cfg.sampler, space, seed, macro=macro)
        train(
            model,
            train_data,
            val_data,
            train_cfg,
            run_dir / "supernet",
            sampler=sampler,
            resume=True,
            progress=train_progress,
        )
        split = split_record(train_data, val_data, dataset=dataset, seed=seed, pool=limit)
        save_checkpoint(
            ckpt_path,
            {
                "model": model.state_dict(),
                "arch": f"supernet:{space.name}",
                "kind": "supernet",  # robnas rank and --supernet read it like supernet train's
                "space": space.name,
                "macro": macro,
                "dataset": dataset,
                "split": split,
            },
        )
    device = next(model.parameters()).device
    model.to(device)
    # Each candidate finetunes and is scored on fixed seeded subsets (the same for every candidate).
    ft_n, score_n = settings.finetune_size, settings.score_size
    evaluator = SupernetEvaluator(
        model,
        space,
        train_data.subset(min(ft_n, len(train_data)), seed) if ft_n else train_data,
        val_data.subset(min(score_n, len(val_data)), seed) if score_n else val_data,
        finetune_cfg=finetune_cfg,
        eval_attack=settings.eval_attack,
        eval_eps=settings.eps_value,
        eval_steps=settings.attack_steps,
        final_macro=final_macro,
        seed=seed,
        batch_size=min(128, train_cfg.batch_size),
    )
    cheap = None
    if settings.prescreen:
        from robnas.indicators import INDICATORS

        key = settings.prescreen
        sign = float(INDICATORS.get(key).direction) if key in INDICATORS else 1.0
        indicator = IndicatorEvaluator(
            space,
            None,
            val_data.subset(min(64, len(val_data)), seed),
            indicators=[key] if key in ("fsp_dist", "jac_norm", "hessian_eig") else [],
            supernet=model,
            final_macro=final_macro,
            seed=seed,
        )
        cheap = lambda g: sign * indicator.evaluate(g).metrics[key]  # noqa: E731
    gate = BudgetGate(space, settings.budget, final_macro, dataset)
    strategy = build_strategy(settings, space, seed, cheap, gate=gate)
    flops = flops_at(space, final_macro, dataset)
    study = Study(
        run_dir,
        settings.to_dict(),
        evaluator,
        strategy,
        storage,
        flops=flops,
        final_params=lambda g: space.num_params(g, final_macro, dataset),
        proxy_params=lambda g: space.num_params(g, macro, dataset),
    )
    phase("searching")
    study.run(settings.trials, progress=progress)
    extra: dict[str, Any] = {"budget": gate.report()}  # rejections of the whole (replayed) search
    summary = study.summary(settings.top_k, extra=extra)
    if settings.final_train and summary["best"] is not None:
        phase("training the winner")
        extra["final"] = final_train(
            settings, run_dir, summary["best"]["genotype"], train_data, val_data, train_progress
        )
        summary = study.summary(settings.top_k, extra=extra)
    return summary


def final_train(
    settings: SearchSettings,
    run_dir: Path,
    genotype: str,
    train_data: Any,
    val_data: Any,
    train_progress: Callable[[Any], None] | None,
) -> dict[str, Any]:
    """Train the winner at the final size and attack it with the search's PGD (eps, steps) on
    the test split."""
    import torch

    from robnas.attacks import make_attack
    from robnas.config import TrainConfig
    from robnas.data.datasets import load_dataset
    from robnas.indicators.robust import robust_accuracy
    from robnas.training.loop import train

    space = get_space(settings.space)
    g = Genotype.from_str(genotype)
    model = space.build(g, settings.final_macro, settings.dataset)
    cfg = TrainConfig(**(settings.train or {}))
    train(model, train_data, val_data, cfg, run_dir / "final", resume=True, progress=train_progress)
    test = load_dataset(settings.dataset, "test", data_dir=settings.data_dir)
    test = test.subset(min(len(test), settings.val_size or len(test)), settings.seed)
    device = next(model.parameters()).device
    attack = make_attack(
        settings.eval_attack,
        eps=settings.eps_value,
        steps=settings.attack_steps,
        seed=settings.seed,
    )
    clean, robust = robust_accuracy(
        model,
        test.floats().to(device),
        test.labels.to(device),
        attack,
        batch_size=128,
        generator=torch.Generator(device=device).manual_seed(settings.seed),
    )
    return {
        "genotype": genotype,
        "test_images": len(test),
        "eps": settings.eps,
        "attack_steps": settings.attack_steps,
        "num_params": space.num_params(g, settings.final_macro, settings.dataset),
        "clean_acc": clean,
        robust_key(settings.attack_steps): robust,
    }
