"""`robnas train ARCH --out RUN` and `robnas supernet train --space darts --out RUN`.

`--preset tiny|paper` picks the training schedule (epochs, batch, attack, data sizes) and the
default size; `--size` (or --C/--layers/--N) sizes the network; any explicit option overrides.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from robnas.cli._common import add_data_arguments, add_size_arguments, data_spec, size_of
from robnas.cli.arch import add_arch_arguments, resolve_from_args
from robnas.config import METHODS
from robnas.specs import DEFAULT_EPS, Eps


def _add_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="run folder (last.pt, best.pt, log.csv)")
    parser.add_argument(
        "--method",
        choices=METHODS,
        help="default: pgd; clean = standard training without an attack",
    )
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float, help="peak LR at batch 128 (scaled with batch size)")
    parser.add_argument("--warmup-epochs", type=float)
    parser.add_argument(
        "--clean-epochs", type=float, help="train clean for this many epochs first (e.g. 0.3)"
    )
    parser.add_argument(
        "--eps-ramp-epochs",
        type=float,
        help="after the clean start, raise the attack's eps from 0 over this many epochs",
    )
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--eps", help=f"Linf budget (default: the preset's, {DEFAULT_EPS})")
    parser.add_argument("--alpha", help="attack step size, e.g. 2/255")
    parser.add_argument("--steps", type=int, help="attack steps during training (PGD-K, TRADES)")
    parser.add_argument("--beta", type=float, help="TRADES trade-off")
    parser.add_argument("--val-steps", type=int, help="PGD steps of robust validation")
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        help="random crop and flip of training batches (default: the preset's; tiny: off)",
    )
    parser.add_argument("--train-size", type=int, help="training images (default: preset)")
    parser.add_argument("--val-size", type=int, help="held-out validation images")
    add_data_arguments(parser)
    parser.add_argument("--device", help="cpu, cuda, cuda:N or auto (default: auto)")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the network (pays a compilation first; for runs of many minutes)",
    )
    parser.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        help="bf16 autocast in training steps (default: on for CUDA, off on CPUs; robnas/device.py has the measurements)",
    )
    parser.add_argument(
        "--channels-last",
        action=argparse.BooleanOptionalAction,
        help="NHWC memory layout (default: on for CUDA and the CPU)",
    )
    parser.add_argument(
        "--chunks",
        type=int,
        default=1,
        help="accumulate gradients over this many sub-batches per process and step",
    )
    parser.add_argument("--seed", type=int)
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="adversarially train one architecture")
    add_arch_arguments(train)
    _add_training_arguments(train)
    train.set_defaults(func=run_train)

    supernet = subparsers.add_parser("supernet", help="one-shot supernet commands")
    sub = supernet.add_subparsers(
        dest="supernet_command", metavar="SUPERNET_COMMAND", required=True
    )
    st = sub.add_parser("train", help="adversarially train the weight-sharing supernet of a space")
    st.add_argument("--space", default="darts", help="space name or TOML file")
    add_size_arguments(st)
    st.add_argument(
        "--sampler",
        help="path sampler: uniform_op, dense_start, fair_op, uniform_density or uniform_class "
        "(default: the preset's; without one uniform_op)",
    )
    st.add_argument("--free", action="store_true", help="sample one cell per layer (cell-free)")
    _add_training_arguments(st)
    st.set_defaults(func=run_supernet_train)


def _config(args: argparse.Namespace) -> Any:
    from robnas.config import TrainConfig, with_overrides

    base = args.preset.train if args.preset else TrainConfig()
    return with_overrides(
        base,
        method=args.method,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_epochs=args.warmup_epochs,
        clean_epochs=args.clean_epochs,
        eps_ramp_epochs=args.eps_ramp_epochs,
        weight_decay=args.weight_decay,
        eps=Eps.parse(args.eps) if args.eps else None,
        alpha=Eps.parse(args.alpha) if args.alpha else None,
        steps=args.steps,
        beta=args.beta,
        val_steps=args.val_steps,
        sampler=getattr(args, "sampler", None),
        augment=args.augment,
        device=args.device,
        seed=args.seed,
    )


def _data(args: argparse.Namespace, dataset: str, seed: int) -> tuple[Any, Any]:
    from robnas.data.datasets import load_train_val

    p = args.preset
    defaults = (p.train_images, p.val_images) if p is not None else (None, 5000)
    return load_train_val(data_spec(args, dataset).with_defaults(*defaults), seed)


class ProgressBar:
    """Draws the trainer's `Progress` reports as one tqdm bar per epoch (on stderr)."""

    def __init__(self) -> None:
        self.bar: Any = None

    def __call__(self, report: Any) -> None:
        from tqdm import tqdm

        if report.kind == "epoch_start":
            desc = f"epoch {report.epoch}/{report.epochs}"
            self.bar = tqdm(  # a run resumed inside the epoch starts at its step
                total=report.steps, initial=report.step, desc=desc, leave=False, dynamic_ncols=True
            )
        elif report.kind == "step" and self.bar is not None:
            self.bar.update(report.step - self.bar.n)
            self.bar.set_postfix(loss=f"{report.loss:.3f}")
        elif report.kind == "epoch_end":
            if self.bar is not None:
                self.bar.close()
                self.bar = None
            keys = ("train_loss", "train_adv_acc", "clean_acc", "robust_acc")
            row = report.row or {}
            text = ", ".join(f"{k} {row[k]:.3f}" for k in keys if k in row)
            tqdm.write(f"epoch {report.epoch}: {text} ({row.get('seconds', 0.0):.0f} s)")


def _policy(args: argparse.Namespace, device: str) -> Any:
    from robnas.device import device_policy

    return device_policy(
        device, bf16=args.bf16, channels_last=args.channels_last, compile=args.compile or None
    )


def _run(
    args: argparse.Namespace, cfg: Any, model: Any, dataset: str, label: str, **kw: Any
) -> int:
    """Train `model` with `cfg` (the command's `_config`, built once by the caller)."""
    import dataclasses
    import os

    from robnas.errors import ConfigError
    from robnas.training.loop import train

    policy = _policy(args, cfg.device)  # a missing GPU fails here, before any data is read
    if args.chunks < 1:
        raise ConfigError(f"--chunks must be at least 1, got {args.chunks}")
    if args.val_size is not None:
        cfg = dataclasses.replace(cfg, val_size=min(cfg.val_size, args.val_size))
    main_rank = int(os.environ.get("RANK", "0")) == 0  # under torchrun only rank 0 prints
    world = int(os.environ.get("WORLD_SIZE", "1"))
    train_data, val_data = _data(args, dataset, cfg.seed)
    if main_rank:
        procs = f", {world} processes" if world > 1 else ""
        print(
            f"training {label} on {len(train_data)} images ({cfg.method}, {cfg.epochs} epochs, "
            f"batch {cfg.batch_size}, lr {cfg.peak_lr:.4g}; {policy.describe()}{procs}); "
            f"validating on {len(val_data)}",
            file=sys.stderr,
        )
    result = train(
        model,
        train_data,
        val_data,
        cfg,
        args.out,
        resume=args.resume,
        progress=None if args.no_progress or not main_rank else ProgressBar(),
        policy=policy,
        chunks=args.chunks,
        **kw,
    )
    if not main_rank:
        return 0
    final, best = result.final, result.best
    print(
        f"final: clean {final.get('clean_acc', float('nan')):.4f}, "
        f"pgd{cfg.val_steps} {final.get('robust_acc', float('nan')):.4f}; "
        f"best pgd{cfg.val_steps} {best.get('robust_acc', float('nan')):.4f} at epoch "
        f"{int(best.get('epoch', 0))}"
    )
    print(f"wrote {args.out}/last.pt, best.pt, log.csv")
    return 0


def run_train(args: argparse.Namespace) -> int:
    spec = resolve_from_args(args)
    from robnas.evaluators.base import seeded

    cfg = _config(args)
    model = seeded(cfg.seed, spec.build)  # the initial weights follow --seed alone
    return _run(args, cfg, model, spec.dataset, spec.label, spec=spec)


def run_supernet_train(args: argparse.Namespace) -> int:
    from robnas.evaluators.base import seeded
    from robnas.models.samplers import make_sampler
    from robnas.models.supernet import Supernet
    from robnas.space.search_space import get_cell_space

    space = get_cell_space(args.space)
    macro = space.resolve_size(size_of(args))
    cfg = _config(args)
    model = seeded(cfg.seed, lambda: Supernet(space, macro, args.dataset))
    sampler = make_sampler(cfg.sampler, space, cfg.seed, free=args.free, macro=macro)
    label = f"supernet:{space.name} ({sampler.name}{', free' if args.free else ''})"
    return _run(args, cfg, model, args.dataset, label, sampler=sampler)
