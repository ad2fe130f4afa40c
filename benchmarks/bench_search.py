"""The main job's phases timed on this machine, and cells scored per CPU-minute per protocol.

The main job is `robnas search --space darts --budget 5M --preset tiny`: it loads CIFAR-10,
trains the tiny darts supernet for one pass (a mix of clean and FGSM-RS steps on paths that
shrink from dense to uniform), validates it (BatchNorm recalibrated per path, PGD-10), then
scores candidates: inherit, finetune (FGSM-RS on 500 images), recalibrate BatchNorm, PGD-20 on
250 held-out images, indicators (FSP distance, Jacobian norm) on 64 of them.

This script times each phase with the preset's own settings and code paths (the evaluators the
search builds), wall and CPU seconds (the CPU time of this process, all threads), and prints:
- the CPU model and flags (lscpu), torch version and its SIMD level, threads, load average;
- supernet steps per second at points along the pass (its schedule of clean/adversarial steps
  and path densities), the pass's mean, and the validation's seconds;
- one candidate's phases: recalibration, finetune, attack, indicators;
- cells per CPU-minute for every protocol in `PROTOCOLS` (a registry: add one with
  `PROTOCOLS.add(name, factory)`, the factory taking a `Bench` and returning an evaluator).

A candidate's attack costs in proportion to the images it classifies right clean (the others
cannot be robust and are not attacked), so scoring speed depends on how trained the supernet is:
pass `--supernet runs/tiny/supernet.pt` (the main job's) for the real numbers; without it the
supernet is trained here for `--warm-steps` steps of the preset's recipe first.

    python benchmarks/bench_search.py [--quick] [--supernet CKPT] [--threads N] [--cells 3]

The last line is one JSON object: `cpu`, `supernet_steps_per_s`, `candidate_s` (wall seconds per
cell under the main job's protocol), `candidate_cpu_s`, `cells_per_minute` (protocol -> cells
per CPU-minute) and the phase times.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from robnas.config import Preset, TrainConfig, get_preset
from robnas.data.datasets import ImageData, load_dataset, split_train_val
from robnas.device import device_policy
from robnas.evaluators.base import DEFAULT_INDICATORS, Evaluator, Scoring
from robnas.evaluators.indicator import IndicatorEvaluator
from robnas.evaluators.protocol import protocol_evaluator
from robnas.evaluators.supernet import SupernetEvaluator
from robnas.genotype import Genotype
from robnas.models.samplers import DenseStartSampler, UniformOpSampler, make_sampler
from robnas.models.supernet import Supernet
from robnas.registry import Registry
from robnas.space.search_space import SearchSpace, get_space
from robnas.specs import AttackSpec
from robnas.training.steps import AdversarialStep, make_optimizer

SIMD_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "avx512_vnni", "amx_bf16")


def cpu_info() -> tuple[str, list[str]]:
    """(model name, flags) from lscpu, else /proc/cpuinfo, else the platform string."""
    fields: dict[str, str] = {}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        fields = {
            k.strip(): v.strip() for k, _, v in (ln.partition(":") for ln in out.splitlines())
        }
    except (OSError, subprocess.CalledProcessError):
        try:
            with open("/proc/cpuinfo") as fh:
                for line in fh:
                    key, _, value = line.partition(":")
                    key = {"model name": "Model name", "flags": "Flags"}.get(key.strip(), "")
                    if key and key not in fields:
                        fields[key] = value.strip()
        except OSError:
            pass
    return fields.get("Model name", platform.processor() or "unknown"), fields.get(
        "Flags", ""
    ).split()


@dataclass
class Clock:
    """Wall and CPU seconds (this process, all threads) of the phases timed with `phase`."""

    wall: dict[str, float] = dataclasses.field(default_factory=dict)
    cpu: dict[str, float] = dataclasses.field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        w, c = time.perf_counter(), time.process_time()
        yield
        self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - w
        self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - c


@dataclass
class Bench:
    """What a protocol needs to build its evaluator, as the main job would build it."""

    space: SearchSpace
    preset: Preset
    supernet: Supernet
    finetune_data: ImageData
    score_data: ImageData
    final_macro: dict[str, Any]
    seed: int


ProtocolFactory = Callable[[Bench], Evaluator]
PROTOCOLS: Registry[ProtocolFactory] = Registry("protocol")


def _supernet_evaluator(b: Bench, finetune: bool) -> SupernetEvaluator:
    """As `robnas search` builds it (robnas/search/supernet.py)."""
    train_cfg = b.preset.train
    return SupernetEvaluator(
        b.supernet,
        b.space,
        b.finetune_data,
        b.score_data,
        finetune_cfg=b.preset.finetune_config() if finetune else None,
        scoring=Scoring(
            attack=AttackSpec(),  # the main job's PGD-20 at the default eps
            indicators=DEFAULT_INDICATORS,
            batch_size=min(128, train_cfg.batch_size),
        ),
        final_macro=b.final_macro,
        seed=b.seed,
    )


def _prescreen(key: str) -> ProtocolFactory:
    """The indicator-only evaluator `--prescreen KEY` ranks proposals by (as the search builds
    it: the supernet's path, 64 held-out images)."""

    def factory(b: Bench) -> Evaluator:
        weighted = key in ("fsp_dist", "jac_norm", "hessian_eig")
        return IndicatorEvaluator(
            b.space,
            None,
            b.score_data.subset(min(64, len(b.score_data)), b.seed),
            Scoring(attack=None, indicators=(key,) if weighted else (), batch_size=64),
            supernet=b.supernet,
            final_macro=b.final_macro,
            seed=b.seed,
        )

    return factory


PROTOCOLS.add("finetune_pgd20", lambda b: _supernet_evaluator(b, finetune=True))
PROTOCOLS.add("inherited_pgd20", lambda b: _supernet_evaluator(b, finetune=False))
for _key in ("fsp_dist", "jac_norm", "hessian_eig", "density"):
    PROTOCOLS.add(f"prescreen_{_key}", _prescreen(_key))
MAIN_PROTOCOL = "finetune_pgd20"


def pass_points(steps: int, points: int) -> list[int]:
    """Optimiser steps spread over the pass (midpoints of `points` equal parts)."""
    return [round((k + 0.5) * steps / points) for k in range(points)]


def time_steps(
    supernet: Supernet,
    data: ImageData,
    cfg: TrainConfig,
    space: SearchSpace,
    places: list[tuple[int, float]],
    *,
    steps_each: int,
    seed: int,
) -> list[tuple[float, float]]:
    """(wall, CPU) seconds per supernet step at each place (paths drawn as at draw `n` of the
    pass, the attack at `eps_scale`), the mean of `steps_each` steps after one warm-up step."""
    policy = device_policy(cfg.device)
    policy.prepare(supernet)
    total = len(data) // cfg.batch_size
    sampler = make_sampler(cfg.sampler, space, seed, macro=supernet.macro)
    sampler.start(total)
    step = AdversarialStep(cfg, make_optimizer(supernet, cfg), None, policy=policy)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for drawn, scale in places:
        if isinstance(sampler, DenseStartSampler):
            sampler.drawn = drawn
        idx = torch.randint(len(data), (steps_each + 1, cfg.batch_size), generator=gen)
        wall = cpu = 0.0
        for k in range(steps_each + 1):  # the first one warms up this place's shapes
            x = policy.inputs(data.images[idx[k]].float().div_(255))
            y = data.labels[idx[k]]
            supernet.set_path(sampler.sample())
            w, c = time.perf_counter(), time.process_time()
            step(supernet, x, y, gen, eps_scale=scale)
            if k:
                wall += time.perf_counter() - w
                cpu += time.process_time() - c
        out.append((wall / steps_each, cpu / steps_each))
    return out


def time_supernet(
    supernet: Supernet,
    data: ImageData,
    cfg: TrainConfig,
    space: SearchSpace,
    *,
    points: int,
    steps_each: int,
    seed: int,
) -> tuple[float, list[dict[str, float]]]:
    """Mean wall seconds per step over the pass: `steps_each` steps timed at each of `points`
    places of the pass, each with that place's attack strength and path density."""
    total = len(data) // cfg.batch_size
    at = pass_points(total, points)
    places = [(n, cfg.eps_scale(n, total)) for n in at]
    times = time_steps(supernet, data, cfg, space, places, steps_each=steps_each, seed=seed)
    rows = [
        {"step": n, "eps_scale": scale, "seconds": wall, "cpu_seconds": cpu}
        for (n, scale), (wall, cpu) in zip(places, times)
    ]
    return sum(r["seconds"] for r in rows) / len(rows), rows


def load_or_warm(
    supernet: Supernet,
    checkpoint: str | None,
    data: ImageData,
    cfg: TrainConfig,
    steps: int,
    seed: int,
) -> None:
    """The supernet's weights from a training checkpoint, or else `warm_train`'s short run."""
    if checkpoint:
        from robnas.checkpoint import load_checkpoint, load_state

        load_state(supernet, load_checkpoint(checkpoint)["model"], checkpoint)
    else:
        warm_train(supernet, data, cfg, steps, seed)


def warm_train(
    supernet: Supernet, data: ImageData, cfg: TrainConfig, steps: int, seed: int
) -> None:
    """A short run of the preset's recipe so candidates are not at chance: `steps` steps, the
    first half clean (its end-of-run validation kept to one path, PGD-1 on 32 images)."""
    if steps <= 0:
        return
    from robnas.training.loop import train

    short = dataclasses.replace(
        cfg,
        epochs=1,
        clean_epochs=0.5,
        eps_ramp_epochs=0.0,
        warmup_epochs=0.1,
        val_size=32,
        val_steps=1,
        val_paths=1,
        recal_batches=1,
    )
    images = data.subset(min(len(data), steps * cfg.batch_size), seed)
    train(supernet, images, data.subset(min(len(data), 32), seed + 1), short)


def candidate_phases(b: Bench, genotype: Genotype, clock: Clock) -> float:
    """One candidate of the main protocol, phase by phase; returns its clean accuracy."""
    from robnas.attacks import make_attack
    from robnas.indicators import INDICATORS, as_config
    from robnas.indicators.robust import robust_accuracy
    from robnas.models.supernet import recalibrate
    from robnas.training.finetune import finetune

    evaluator = _supernet_evaluator(b, finetune=True)
    gen = torch.Generator().manual_seed(b.seed)
    with clock.phase("extract"):
        model = b.supernet.extract(genotype)
    device = next(model.parameters()).device
    with clock.phase("finetune"):
        finetune(model, b.finetune_data, b.preset.finetune_config(), generator=gen)  # type: ignore[arg-type]
    with clock.phase("recalibration"):
        recalibrate(
            model, b.finetune_data, evaluator.recal_batches, evaluator.batch_size, gen, device
        )
    images, labels = b.score_data.floats(), b.score_data.labels
    with clock.phase("attack"):
        attack = make_attack("pgd20", eps=8 / 255, seed=b.seed)
        clean, _ = robust_accuracy(
            model,
            images,
            labels,
            attack,
            batch_size=evaluator.batch_size,
            generator=torch.Generator().manual_seed(b.seed),
        )
    with clock.phase("indicators"):
        cfg = as_config(None)
        for name in evaluator.scorer.indicators:
            INDICATORS.get(name)(model, images[:64], labels[:64], cfg=cfg)
    return clean


def estimator_ratios(kinds: list[float], validation: float, candidate: float) -> dict[str, float]:
    """robnas.estimate's constants from seconds per step of the three kinds `time_steps` measures
    (clean on the whole supernet, clean on a uniform path, FGSM-RS on a uniform path), the
    validation's and one candidate's seconds: costs in clean steps on a uniform path."""
    dense, uniform, adv = kinds
    return {
        "adv_over_clean": adv / uniform,
        "dense_extra": dense / uniform - 1,
        "validation_steps": validation / uniform,
        "candidate_steps": candidate / uniform,
    }


def time_cells(name: str, evaluator: Any, genotypes: list[Any]) -> tuple[float, float, float]:
    """Wall and CPU seconds per cell of a scoring protocol, and its cells per CPU-minute."""
    clock = Clock()
    for g in genotypes:
        with clock.phase(name):
            evaluator.evaluate(g)
    wall, cpu = clock.wall[name] / len(genotypes), clock.cpu[name] / len(genotypes)
    per_minute = 60.0 / max(cpu, 1e-9)
    print(
        f"protocol {name}: {wall:.2f} s wall, {cpu:.2f} s CPU per cell, "
        f"{per_minute:.1f} cells per CPU-minute"
    )
    return wall, cpu, per_minute


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks it runs, seconds")
    parser.add_argument("--supernet", metavar="CKPT", help="a trained tiny darts supernet")
    parser.add_argument("--warm-steps", type=int, default=300, help="training without --supernet")
    parser.add_argument("--cells", type=int, default=3, help="cells per protocol")
    parser.add_argument("--protocols", help=f"comma list (default all: {', '.join(PROTOCOLS)})")
    parser.add_argument(
        "--nb201-protocols",
        default="ranker,lowfi",
        help="`robnas search --space nb201 --protocol P` protocols to time (quick: ranker only)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--data-dir", help="default: ROBNAS_DATA")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    model_name, flags = cpu_info()
    print(f"cpu: {model_name}")
    print(f"flags: {' '.join(flags)}")
    simd = [f for f in SIMD_FLAGS if f in flags]
    isa = torch.backends.cpu.get_cpu_capability()
    print(f"torch {torch.__version__} ({isa}, oneDNN {torch.backends.mkldnn.is_available()})")
    print(f"threads: {torch.get_num_threads()}, load average {os.getloadavg()[0]:.2f}")

    preset = get_preset("tiny")
    space = get_space("darts")
    macro = space.resolve_macro("tiny")
    if args.quick:  # every phase and protocol on a smaller network and a few images
        macro = space.resolve_macro("tiny", C=4, layers=3)
        small = dataclasses.replace(preset.train, batch_size=8, val_size=16, recal_batches=2)
        preset = dataclasses.replace(
            preset,
            train=small,
            val_images=40,
            candidates=dataclasses.replace(preset.candidates, finetune_images=16, score_images=16),
        )
    cfg = preset.train
    final_macro = space.resolve_macro("paper")
    clock = Clock()
    with clock.phase("data_load"):
        limit = 400 if args.quick else None
        data = load_dataset("cifar10", "train", data_dir=args.data_dir, limit=limit, seed=0)
        train_data, val_data = split_train_val(data, preset.val_images, args.seed)
    print(f"data load: {clock.wall['data_load']:.1f} s ({len(data)} images)")

    supernet = Supernet(space, macro)
    with clock.phase("warm_train"):
        steps = 4 if args.quick else args.warm_steps
        load_or_warm(supernet, args.supernet, train_data, cfg, steps, args.seed)

    points, steps_each = (2, 1) if args.quick else (6, 4)
    with clock.phase("supernet_steps"):
        step_s, rows = time_supernet(
            supernet, train_data, cfg, space, points=points, steps_each=steps_each, seed=args.seed
        )
    for r in rows:
        print(
            f"supernet step {r['step']:>5} (eps x{r['eps_scale']:.2f}): {r['seconds']:.3f} s, "
            f"{r['cpu_seconds']:.3f} s CPU"
        )
    cpu_step_s = sum(r["cpu_seconds"] for r in rows) / len(rows)
    total_steps = cfg.epochs * (len(train_data) // cfg.batch_size)
    dense = total_steps // 2  # where dense_start's paths become uniform
    with clock.phase("supernet_steps"):
        places = [(0, 0.0), (dense, 0.0), (dense, 1.0)]
        kinds = time_steps(
            supernet, train_data, cfg, space, places, steps_each=steps_each + 1, seed=args.seed
        )
    (_, clean_dense), (_, clean_uniform), (_, adv_uniform) = kinds
    print(
        f"supernet step CPU s: clean on the whole supernet {clean_dense:.3f}, clean on a uniform "
        f"path {clean_uniform:.3f}, FGSM-RS on a uniform path {adv_uniform:.3f}"
    )
    print(
        f"supernet: {1 / step_s:.2f} steps/s, the pass ({total_steps} steps) {total_steps * step_s:.0f} s"
    )

    from robnas.training.validate import validate

    with clock.phase("validation"):
        validate(supernet, train_data, val_data, cfg)
    print(
        f"validation ({cfg.val_paths} paths, PGD-{cfg.val_steps}): {clock.wall['validation']:.1f} s"
    )

    ft_n, score_n = preset.candidates.finetune_images, preset.candidates.score_images
    bench = Bench(
        space,
        preset,
        supernet,
        train_data.subset(min(ft_n or len(train_data), len(train_data)), args.seed),
        val_data.subset(min(score_n or len(val_data), len(val_data)), args.seed),
        final_macro,
        args.seed,
    )
    paths = UniformOpSampler(space, args.seed + 1)
    phase_clock = Clock()
    clean = candidate_phases(bench, paths.sample(), phase_clock)
    for name in ("finetune", "recalibration", "attack", "indicators"):
        print(
            f"candidate {name}: {phase_clock.wall[name]:.2f} s wall, {phase_clock.cpu[name]:.2f} s CPU"
        )
    print(f"candidate clean accuracy {clean:.3f} (the attack's work scales with it)")

    names = args.protocols.split(",") if args.protocols else PROTOCOLS.names()
    cells = 1 if args.quick else args.cells
    per_minute: dict[str, float] = {}
    cell_wall: dict[str, float] = {}
    cell_cpu: dict[str, float] = {}
    for name in names:
        evaluator = PROTOCOLS.get(name)(bench)
        genotypes = [paths.sample() for _ in range(cells)]
        cell_wall[name], cell_cpu[name], per_minute[name] = time_cells(name, evaluator, genotypes)
    # the NB201 protocols (`--protocol ranker | lowfi`): cells at the deployed size, 0.6M-style
    nb201 = get_space("nb201")
    cells_of = UniformOpSampler(nb201, args.seed + 3)
    wanted = ["ranker"] if args.quick else [p for p in args.nb201_protocols.split(",") if p]
    for protocol in wanted:
        name = f"nb201_{protocol}"
        evaluator = protocol_evaluator(
            protocol,
            "fgsm@1",
            nb201,
            final_macro=nb201.resolve_macro("paper"),
            data_dir=args.data_dir,
            seed=args.seed,
        )
        evaluator.evaluate(cells_of.sample())  # data loading and first-call costs stay out
        genotypes = [cells_of.sample() for _ in range(cells)]
        cell_wall[name], cell_cpu[name], per_minute[name] = time_cells(name, evaluator, genotypes)
    # robnas.estimate's constants, in CPU time and in wall time (what the job's estimate
    # measures; with several threads the phases gain unequally from them, and an idle machine is
    # needed for the wall ratios to mean anything)
    estimator = estimator_ratios(
        kinds=[cpu for _, cpu in kinds],
        validation=clock.cpu["validation"],
        candidate=cell_cpu.get(MAIN_PROTOCOL, float("nan")),
    )
    estimator_wall = estimator_ratios(
        kinds=[wall for wall, _ in kinds],
        validation=clock.wall["validation"],
        candidate=cell_wall.get(MAIN_PROTOCOL, float("nan")),
    )
    print("estimator: " + ", ".join(f"{k} {v:.2f}" for k, v in estimator.items()))
    print("estimator (wall): " + ", ".join(f"{k} {v:.2f}" for k, v in estimator_wall.items()))
    result: dict[str, Any] = {
        "cpu": model_name,
        "simd": simd,
        "torch": torch.__version__,
        "isa": isa,
        "threads": torch.get_num_threads(),
        "load": round(os.getloadavg()[0], 2),
        "data_load_s": round(clock.wall["data_load"], 3),
        "supernet_steps_per_s": round(1 / step_s, 4),
        "supernet_pass_s": round(total_steps * step_s, 1),
        "supernet_cpu_steps_per_s": round(1 / cpu_step_s, 4),
        "validation_s": round(clock.wall["validation"], 2),
        "recalibration_s": round(phase_clock.wall["recalibration"], 3),
        "finetune_s": round(phase_clock.wall["finetune"], 3),
        "attack_s": round(phase_clock.wall["attack"], 3),
        "indicators_s": round(phase_clock.wall["indicators"], 3),
        "candidate_clean_acc": clean,
        "candidate_s": round(cell_wall.get(MAIN_PROTOCOL, float("nan")), 3),
        "candidate_cpu_s": round(cell_cpu.get(MAIN_PROTOCOL, float("nan")), 3),
        "cells_per_minute": {k: round(v, 3) for k, v in per_minute.items()},
        "estimator": {k: round(v, 3) for k, v in estimator.items()},
        "estimator_wall": {k: round(v, 3) for k, v in estimator_wall.items()},
        "quick": args.quick,
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
