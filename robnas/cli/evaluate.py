"""`robnas evaluate ARCH --checkpoint PATH`: the attack suite on a trained model, resumable."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from robnas.cli._common import add_data_arguments, size_of
from robnas.cli.arch import add_arch_arguments
from robnas.specs import DEFAULT_EPS, Eps

DEFAULT_ATTACKS = "fgsm,pgd20,pgd100,mifgsm,deepfool"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="attack a trained model and report robust accuracy per attack",
        description="Run the attack suite on --n test examples; writes CSV + JSON next to the "
        "checkpoint (or in --out) and resumes an interrupted run.",
    )
    add_arch_arguments(parser)
    parser.add_argument("--checkpoint", required=True, help="checkpoint written by training")
    parser.add_argument("--attacks", default=DEFAULT_ATTACKS, help="comma-separated attack names")
    parser.add_argument(
        "--eps", default=str(DEFAULT_EPS), help=f"Linf budget, e.g. {DEFAULT_EPS} or 0.03"
    )
    parser.add_argument("--eps-l2", default="0.5", help="L2 budget of L2 attacks (deepfool, cw)")
    parser.add_argument("--n", type=int, default=1000, help="test examples (class-balanced)")
    parser.add_argument("--batch-size", type=int, default=100)
    add_data_arguments(parser)
    parser.add_argument("--out", help="output folder (default: the checkpoint's folder)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    parser.add_argument(
        "--cascade",
        action="store_true",
        help="attack only examples that survived earlier attacks (per-attack numbers cumulative)",
    )
    parser.add_argument("--no-checks", action="store_true", help="skip gradient-masking checks")
    parser.add_argument("--fresh", action="store_true", help="ignore saved partial progress")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="resume saved progress (the default; kept for clarity)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pandas as pd
    import torch
    from tqdm import tqdm

    from robnas.errors import ConfigError
    from robnas.evaluation import EvaluationJob

    if args.fresh and args.resume:
        raise ConfigError("--fresh and --resume contradict each other; pass one")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    job = EvaluationJob.prepare(
        arch=args.arch,
        checkpoint=Path(args.checkpoint),
        dataset=args.dataset,
        attacks=args.attacks,
        eps=Eps.parse(args.eps),
        eps_l2=args.eps_l2,
        n=args.n,
        batch_size=args.batch_size,
        data_dir=args.data_dir,
        out=Path(args.out) if args.out else None,
        seed=args.seed,
        device=device,
        cascade=args.cascade,
        checks=not args.no_checks,
        space=args.space,
        size=size_of(args),
    )
    state = None if args.fresh else job.load_partial()
    total = job.suite.n_units(job.n)
    done = job.suite.units_done(state) if state is not None else 0
    if done:
        print(f"resuming: {done}/{total} batches already done", file=sys.stderr)
    with tqdm(total=total, initial=done, desc="evaluate", unit="batch", file=sys.stderr) as bar:
        report = job.run(state=state, on_unit=lambda _: bar.update(1))
    frame = pd.DataFrame(report.to_records())
    shown = frame[["attack", "eps", "robust_acc", "success_rate", "worst_acc", "seconds"]]
    shown = shown.assign(
        linf_max=frame["linf_max"], l2_mean=frame["l2_mean"], noise_rate=frame["noise_rate"]
    )
    print(shown.to_string(index=False, float_format=_fmt))
    for check in report.checks:
        mark = "FLAG" if check.flagged else "ok"
        print(
            f"check {check.name}: {mark} (value {check.value:.4g}, threshold {check.threshold:g})"
        )
    print(f"wrote {job.csv_path} and {job.json_path}")
    return 0


def _fmt(value: Any) -> str:
    return f"{value:.4f}"
