"""Training-step speed ratios, measured in one run on the CPU in fp32.

1. One PGD-7 adversarial training step over one clean training step (same network, same batch).
2. One supernet training step on a sampled path over the same step on that path's standalone
   network (weights copied with `extract`).
3. `compiled_over_eager`: an eager PGD-7 step over the same step with the network compiled by the
   device policy (`torch.compile`, static shapes), same network and batch (compilation is paid
   in the warm-up, outside the timing).
4. `bf16_over_fp32`: a PGD-7 step under bf16 autocast over the fp32 step, both channels_last as
   the CPU runs them (> 1: bf16 is slower); the device policy leaves bf16 off on CPUs.
5. `contiguous_over_channels_last`: a supernet step on one path with NCHW tensors over the same
   step with the network and batch in channels_last (> 1: channels_last is faster); the device
   policy's CPU default follows it.

Steps are timed interleaved (A, B, A, B, ...) after a warm-up so drift hits both sides alike;
each repeat is the median of `--steps` steps; the ratio is reported as median and min-max over
`--repeats`. The last line is one JSON object.

    python benchmarks/bench_train.py [--space darts] [--C 8] [--layers 5] [--batch 64]
        [--only compile,bf16]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from robnas.config import TrainConfig
from robnas.device import cpu_bf16_flags, device_policy
from robnas.genotype import Genotype
from robnas.models.supernet import Supernet, UniformOpSampler
from robnas.space.search_space import get_space
from robnas.training.steps import AdversarialStep, make_optimizer


def clean_step(
    model: nn.Module, opt: torch.optim.Optimizer
) -> Callable[[torch.Tensor, torch.Tensor], None]:
    def step(x: torch.Tensor, y: torch.Tensor) -> None:
        model.train()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def adv_step(
    model: nn.Module, cfg: TrainConfig, gen: torch.Generator, *, bf16: bool = False
) -> Callable[[torch.Tensor, torch.Tensor], None]:
    step = AdversarialStep(cfg, make_optimizer(model, cfg), None, autocast=bf16)

    def run(x: torch.Tensor, y: torch.Tensor) -> None:
        step(model, x, y, gen)

    return run


def timed(
    fn: Callable[[torch.Tensor, torch.Tensor], None], x: torch.Tensor, y: torch.Tensor
) -> float:
    start = time.perf_counter()
    fn(x, y)
    return time.perf_counter() - start


def ratio(
    a: Callable[[torch.Tensor, torch.Tensor], None],
    b: Callable[[torch.Tensor, torch.Tensor], None],
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    repeats: int,
    warmup: int = 3,
) -> tuple[list[float], float, float]:
    """Ratios time(a)/time(b) per repeat, and the median seconds of a and b."""
    for _ in range(warmup):
        a(x, y)
        b(x, y)
    ratios, ta_all, tb_all = [], [], []
    for _ in range(repeats):
        ta, tb = [], []
        for _ in range(steps):
            ta.append(timed(a, x, y))
            tb.append(timed(b, x, y))
        ratios.append(statistics.median(ta) / statistics.median(tb))
        ta_all += ta
        tb_all += tb
    return ratios, statistics.median(ta_all), statistics.median(tb_all)


def describe(name: str, values: list[float]) -> str:
    return f"{name}: median {statistics.median(values):.3f} (min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="darts")
    parser.add_argument("--C", type=int, default=8)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--N", type=int, default=1)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (0 = torch default); 1 keeps ratios stable on a shared machine",
    )
    parser.add_argument(
        "--only", help="comma list of sections: pgd,supernet,compile,bf16,channels_last"
    )
    parser.add_argument(
        "--step", default="pgd", choices=("pgd", "fgsm-rs", "clean"), help="step of sections 3-5"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    space = get_space(args.space)
    overrides = (
        {"C": args.C, "layers": args.layers}
        if space.family == "darts"
        else {"C": args.C, "N": args.N}
    )
    macro = space.resolve_macro(**overrides)
    gen = torch.Generator().manual_seed(args.seed)
    x = torch.rand(args.batch, 3, 32, 32, generator=gen)
    y = torch.randint(0, 10, (args.batch,), generator=gen)
    supernet = Supernet(space, macro)
    genotype: Genotype = UniformOpSampler(space, args.seed).sample()
    standalone = supernet.extract(genotype)
    cfg = TrainConfig(method="pgd", steps=7, alpha=2 / 255)
    # sections 3-5 may time another step (`--step clean`: one forward and backward; `fgsm-rs`:
    # the tiny preset's)
    cfg34 = TrainConfig(method=args.step, steps=7, alpha=2 / 255)
    print(f"network: {space.name} {macro}, path {genotype.to_str()}")
    print(f"batch: {args.batch} x 3x32x32, fp32 CPU, {torch.get_num_threads()} threads")

    all_sections = {"pgd", "supernet", "compile", "bf16", "channels_last"}
    sections = set(args.only.split(",")) if args.only else all_sections
    out: dict[str, object] = {}

    def record(name: str, values: list[float]) -> None:
        print(describe(name, values))
        out[name] = round(statistics.median(values), 4)
        out[name + "_range"] = [round(min(values), 4), round(max(values), 4)]

    if "pgd" in sections:  # 1. PGD-7 step vs clean step, standalone network
        opt = torch.optim.SGD(standalone.parameters(), lr=1e-3, momentum=0.9)
        r1, t_adv, t_clean = ratio(
            adv_step(standalone, cfg, gen),
            clean_step(standalone, opt),
            x,
            y,
            args.steps,
            args.repeats,
        )
        print(f"clean step {t_clean * 1e3:.1f} ms, PGD-7 step {t_adv * 1e3:.1f} ms")
        record("pgd7_over_clean", r1)

    if "supernet" in sections:  # 2. supernet path vs its standalone network (PGD-7 both)
        supernet.set_path(genotype)
        r2, t_sup, t_alone = ratio(
            adv_step(supernet, cfg, gen),
            adv_step(standalone, cfg, gen),
            x,
            y,
            args.steps,
            args.repeats,
        )
        print(f"standalone PGD-7 step {t_alone * 1e3:.1f} ms, supernet {t_sup * 1e3:.1f} ms")
        record("supernet_over_standalone", r2)

    if "compile" in sections:  # 3. eager vs compiled, two copies of one network
        eager = copy.deepcopy(standalone)
        compiled = device_policy("cpu", bf16=False, compile=True).prepare(copy.deepcopy(standalone))
        began = time.perf_counter()
        compiled_fn = adv_step(compiled, cfg34, gen)
        compiled_fn(x, y)
        print(f"compilation (first compiled step): {time.perf_counter() - began:.1f} s")
        r3, t_eager, t_comp = ratio(
            adv_step(eager, cfg34, gen), compiled_fn, x, y, args.steps, args.repeats
        )
        print(f"eager {args.step} step {t_eager * 1e3:.1f} ms, compiled {t_comp * 1e3:.1f} ms")
        record("compiled_over_eager", r3)

    if "bf16" in sections:  # 4. bf16 autocast vs fp32, both in the CPU's layout (channels_last)
        layout = device_policy("cpu", bf16=False, channels_last=True)
        x_layout = layout.inputs(x)
        bf16_fn = adv_step(layout.prepare(copy.deepcopy(standalone)), cfg34, gen, bf16=True)
        fp32_fn = adv_step(layout.prepare(copy.deepcopy(standalone)), cfg34, gen)
        r4, t_bf16, t_fp32 = ratio(
            lambda _x, y_: bf16_fn(x_layout, y_),
            lambda _x, y_: fp32_fn(x_layout, y_),
            x,
            y,
            args.steps,
            args.repeats,
        )
        print(f"fp32 {args.step} step {t_fp32 * 1e3:.1f} ms, bf16 autocast {t_bf16 * 1e3:.1f} ms")
        print(f"CPU bf16 flags: {sorted(cpu_bf16_flags())}")
        record("bf16_over_fp32", r4)

    if "channels_last" in sections:  # 5. NCHW vs channels_last, two copies of the supernet
        supernet.set_path(genotype)
        nhwc = device_policy("cpu", bf16=False, channels_last=True)
        last = nhwc.prepare(copy.deepcopy(supernet))
        contiguous_fn = adv_step(copy.deepcopy(supernet), cfg34, gen)
        last_fn = adv_step(last, cfg34, gen)
        x_last = nhwc.inputs(x)
        r5, t_nchw, t_nhwc = ratio(
            contiguous_fn,
            lambda _x, y_: last_fn(x_last, y_),
            x,
            y,
            args.steps,
            args.repeats,
        )
        print(f"NCHW {args.step} step {t_nchw * 1e3:.1f} ms, channels_last {t_nhwc * 1e3:.1f} ms")
        record("contiguous_over_channels_last", r5)

    print(
        json.dumps(
            {
                **out,
                "space": space.name,
                "macro": macro,
                "batch": args.batch,
                "step": args.step,
                "threads": torch.get_num_threads(),
            }
        )
    )


if __name__ == "__main__":
    main()
