"""Speed levers of the main job, each measured side by side (before, after) in one run.

Every lever times the same work two ways, interleaved (A, B, A, B, ...) so drift and other
processes hit both alike, and reports the median of each and their ratio (before / after: > 1
means the lever is faster). CPU seconds (this process, all threads) are the main measure on a
shared machine; `threads` compares wall seconds (CPU time cannot show a second thread's gain).

- attack_only: a candidate's PGD-20 scoring (250 held-out images, batch 32) attacking every
  image (before) or only those it classifies right clean (after: `attack(..., only=...)`);
  the accuracies must come out equal, and are printed.
- channels_last: a candidate's finetune + scoring with the network in NCHW or channels_last.
- threads: one supernet FGSM-RS step (batch 32) with 1 or 2 intra-op threads (wall).
- isa: the supernet step in subprocesses with oneDNN and ATen limited to AVX2 or not
  (ONEDNN_MAX_CPU_ISA, ATEN_CPU_CAPABILITY): the two code paths of AVX2 and AVX-512 CPUs.
- onednn: a candidate's attack pass (forward + input gradient, batch 32) with oneDNN on or off.
- inference_mode: the clean forward passes of scoring under no_grad or inference_mode.
- batch: PGD-20 per image at batch 32 or 128 (every image attacked).
- python_overhead: a supernet step at batch 1 over one at batch 32 (an upper bound on the
  share of the step that does not scale with the images: dispatch, Python, path bookkeeping).
- compile (with --compile): torch.compile of one extracted candidate: its compile time and its
  attack pass, eager over compiled.

    python benchmarks/bench_levers.py [--supernet CKPT] [--only attack_only,threads] [--repeats 3]

The last line is one JSON object (lever -> before, after, ratio, unit).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_search import cpu_info, load_or_warm, time_supernet  # noqa: E402

from robnas.attacks import Attack, make_attack  # noqa: E402
from robnas.attacks.base import frozen_model  # noqa: E402
from robnas.config import get_preset  # noqa: E402
from robnas.data.datasets import ImageData, load_dataset, split_train_val  # noqa: E402
from robnas.device import device_policy  # noqa: E402
from robnas.indicators.robust import _correct, robust_accuracy  # noqa: E402
from robnas.models.samplers import UniformOpSampler  # noqa: E402
from robnas.models.supernet import Supernet  # noqa: E402
from robnas.space.search_space import get_space  # noqa: E402
from robnas.training.finetune import finetune  # noqa: E402

LEVERS = (
    "attack_only",
    "channels_last",
    "threads",
    "isa",
    "onednn",
    "inference_mode",
    "batch",
    "python_overhead",
    "compile",
)


def side_by_side(
    a: Callable[[], Any], b: Callable[[], Any], repeats: int, *, wall: bool = False
) -> tuple[float, float]:
    """Median seconds of a and b, run alternately `repeats` times after one warm-up each."""
    clock = time.perf_counter if wall else time.process_time
    a(), b()
    ta, tb = [], []
    for _ in range(repeats):
        for fn, out in ((a, ta), (b, tb)):
            began = clock()
            fn()
            out.append(clock() - began)
    return statistics.median(ta), statistics.median(tb)


def robust_accuracy_all(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int,
    attack: Attack | None = None,
    generator: torch.Generator | None = None,
    seed: int = 0,
) -> tuple[float, float]:
    """Scoring as it was: every image attacked, the robust check on every image (default: the
    scoring attack, PGD-20 at 8/255, seeded by `seed`)."""
    attack = attack or make_attack("pgd20", eps=8 / 255, seed=seed)
    gen = generator or torch.Generator().manual_seed(seed)
    clean = robust = 0
    for s in range(0, len(labels), batch_size):
        x, y = images[s : s + batch_size], labels[s : s + batch_size]
        ok = _correct(model, x, y)
        adv = attack(model, x, y, generator=gen)
        clean += int(ok.sum())
        robust += int((ok & _correct(model, adv, y)).sum())
    return clean / len(labels), robust / len(labels)


def score(model: nn.Module, data: ImageData, batch_size: int, seed: int) -> tuple[float, float]:
    attack = make_attack("pgd20", eps=8 / 255, seed=seed)
    return robust_accuracy(
        model,
        data.floats(),
        data.labels,
        attack,
        batch_size=batch_size,
        generator=torch.Generator().manual_seed(seed),
    )


def attack_pass(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """One PGD iteration's work: forward and the input gradient, weights frozen."""
    with frozen_model(model), torch.enable_grad():
        adv = x.clone().requires_grad_(True)
        loss = F.cross_entropy(model(adv), y, reduction="sum")
        torch.autograd.grad(loss, adv)


def worker(args: argparse.Namespace) -> None:
    """`--worker`: time supernet steps in this process (its ISA set by the environment)."""
    torch.set_num_threads(1)
    preset = get_preset("tiny")
    space = get_space("darts")
    data = load_dataset("cifar10", "train", data_dir=args.data_dir, limit=2000, seed=0)
    supernet = Supernet(space, space.resolve_macro("tiny"))
    _, rows = time_supernet(supernet, data, preset.train, space, points=4, steps_each=3, seed=0)
    print(json.dumps({"step_s": statistics.mean(r["cpu_seconds"] for r in rows)}))


def isa_runs(args: argparse.Namespace, rounds: int) -> dict[str, float]:
    envs = {
        "default": {},
        "onednn_avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
        "aten_avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
        "both_avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2"},
    }
    times: dict[str, list[float]] = {k: [] for k in envs}
    cmd = [sys.executable, __file__, "--worker"]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    for _ in range(rounds):
        for name, extra in envs.items():
            env = {**os.environ, **extra, "OMP_NUM_THREADS": "1"}
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            times[name].append(json.loads(out.strip().splitlines()[-1])["step_s"])
    return {k: statistics.median(v) for k, v in times.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--supernet", metavar="CKPT", help="a trained tiny darts supernet")
    parser.add_argument("--warm-steps", type=int, default=300)
    parser.add_argument("--only", help=f"comma list of levers: {', '.join(LEVERS)}")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    levers = args.only.split(",") if args.only else [x for x in LEVERS if x != "compile"]
    if args.compile and "compile" not in levers:
        levers.append("compile")
    torch.set_num_threads(1)
    model_name, flags = cpu_info()
    print(f"cpu: {model_name}; avx512f: {'avx512f' in flags}; torch {torch.__version__}")
    print(f"load average at start {os.getloadavg()[0]:.2f}; 1 thread unless said")

    preset = get_preset("tiny")
    cfg = preset.train
    space = get_space("darts")
    data = load_dataset("cifar10", "train", data_dir=args.data_dir)
    train_data, val_data = split_train_val(data, preset.val_images, args.seed)
    supernet = Supernet(space, space.resolve_macro("tiny"))
    load_or_warm(supernet, args.supernet, train_data, cfg, args.warm_steps, args.seed)
    ft_data = train_data.subset(preset.candidates.finetune_images or 500, args.seed)
    score_data = val_data.subset(preset.candidates.score_images or 250, args.seed)
    genotype = UniformOpSampler(space, args.seed + 1).sample()
    ft_cfg = preset.finetune_config()
    assert ft_cfg is not None
    candidate = supernet.extract(genotype)
    finetune(candidate, ft_data, ft_cfg, generator=torch.Generator().manual_seed(1))
    candidate.eval()
    images, labels = score_data.floats(), score_data.labels
    x32, y32 = images[::8][:32], labels[::8][:32]
    rows: dict[str, dict[str, Any]] = {}

    def record(lever: str, before: str, after: str, tb: float, ta: float, unit: str) -> None:
        rows[lever] = {"before": before, "after": after, "before_s": round(tb, 4)}
        rows[lever] |= {"after_s": round(ta, 4), "ratio": round(tb / ta, 3), "unit": unit}
        print(f"{lever}: {before} {tb:.3f} s, {after} {ta:.3f} s ({unit}): {tb / ta:.2f}x")

    if "attack_only" in levers:
        got = {}
        tb, ta = side_by_side(
            lambda: got.__setitem__("all", robust_accuracy_all(candidate, images, labels, 32)),
            lambda: got.__setitem__("only", score(candidate, score_data, 32, 0)),
            args.repeats,
        )
        print(f"  accuracies attacking all {got['all']}, clean hits only {got['only']}")
        record("attack_only", "every image", "clean hits", tb, ta, "CPU s, PGD-20 x 250")

    if "channels_last" in levers:
        got = {}

        def protocol(layout: bool) -> Callable[[], None]:
            def run() -> None:
                model = supernet.extract(genotype)
                policy = device_policy("cpu", bf16=False, channels_last=layout, compile=False)
                policy.prepare(model)
                gen = torch.Generator().manual_seed(1)
                finetune(model, ft_data, ft_cfg, generator=gen, policy=policy)
                got[layout] = score(model, score_data, 32, 0)

            return run

        tb, ta = side_by_side(protocol(False), protocol(True), args.repeats)
        print(f"  accuracies NCHW {got[False]}, channels_last {got[True]}")
        record("channels_last", "NCHW", "channels_last", tb, ta, "CPU s, finetune + PGD-20")

    if "threads" in levers:
        sn = copy.deepcopy(supernet)

        def steps(n: int) -> Callable[[], None]:
            def run() -> None:
                torch.set_num_threads(n)
                time_supernet(sn, train_data, cfg, space, points=2, steps_each=2, seed=0)
                torch.set_num_threads(1)

            return run

        tb, ta = side_by_side(steps(1), steps(2), args.repeats, wall=True)
        record("threads", "1 thread", "2 threads", tb, ta, "wall s, 2 x 3 supernet steps")

    if "isa" in levers:
        isa = isa_runs(args, max(1, args.repeats - 1))
        for name, value in isa.items():
            print(f"  isa {name}: {value:.3f} s per supernet step")
        record(
            "isa",
            "AVX2 (both)",
            "AVX-512 (default)",
            isa["both_avx2"],
            isa["default"],
            "CPU s per step",
        )
        rows["isa"]["runs"] = {k: round(v, 4) for k, v in isa.items()}

    if "onednn" in levers:

        def passes(enabled: bool) -> Callable[[], None]:
            def run() -> None:
                with torch.backends.mkldnn.flags(enabled=enabled):
                    for _ in range(5):
                        attack_pass(candidate, x32, y32)

            return run

        tb, ta = side_by_side(passes(False), passes(True), args.repeats)
        record("onednn", "oneDNN off", "oneDNN on", tb, ta, "CPU s, 5 attack passes")

    if "inference_mode" in levers:

        def clean(mode: Callable[[], Any]) -> Callable[[], None]:
            def run() -> None:
                with frozen_model(candidate), mode():
                    for s in range(0, len(labels), 32):
                        candidate(images[s : s + 32])

            return run

        tb, ta = side_by_side(clean(torch.no_grad), clean(torch.inference_mode), args.repeats)
        record("inference_mode", "no_grad", "inference_mode", tb, ta, "CPU s, 250 clean images")

    if "batch" in levers:
        tb, ta = side_by_side(
            lambda: robust_accuracy_all(candidate, images, labels, 32),
            lambda: robust_accuracy_all(candidate, images, labels, 128),
            args.repeats,
        )
        record("batch", "batch 32", "batch 128", tb, ta, "CPU s, PGD-20 x 250")

    if "python_overhead" in levers:
        small = ImageData(train_data.images[:64], train_data.labels[:64], train_data.classes)
        one = dict(points=2, steps_each=3, seed=0)
        cfg1 = cfg.__class__(**{**cfg.to_dict(), "batch_size": 1})
        sn = copy.deepcopy(supernet)
        t1, t32 = side_by_side(
            lambda: time_supernet(sn, small, cfg1, space, **one),  # type: ignore[arg-type]
            lambda: time_supernet(sn, train_data, cfg, space, **one),  # type: ignore[arg-type]
            args.repeats,
        )
        record("python_overhead", "batch 1", "batch 32", t1, t32, "CPU s, 2 x 4 steps")

    if "compile" in levers:
        eager = supernet.extract(genotype).eval()
        compiled = copy.deepcopy(eager)
        compiled.compile(dynamic=False)
        w, c = time.perf_counter(), time.process_time()
        attack_pass(compiled, x32, y32)
        compile_wall, compile_cpu = time.perf_counter() - w, time.process_time() - c
        print(f"  compile of one candidate: {compile_wall:.1f} s wall, {compile_cpu:.1f} s CPU")
        tb, ta = side_by_side(
            lambda: attack_pass(eager, x32, y32), lambda: attack_pass(compiled, x32, y32), 5
        )
        record("compile", "eager", "compiled", tb, ta, "CPU s, 1 attack pass")
        rows["compile"]["compile_cpu_s"] = round(compile_cpu, 1)

    rows["_meta"] = {"cpu": model_name, "torch": torch.__version__, "load": os.getloadavg()[0]}
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
