"""`robnas study modifications --out DIR`: train and attack the BN / residual / SE variants of
VGG-16, Inception and MobileNet V2/V3; writes modifications.{csv,md,png}, resumable."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from robnas.cli._common import add_data_arguments
from robnas.specs import DEFAULT_EPS, Eps


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("study", help="architecture studies (train + attack a grid)")
    sub = parser.add_subparsers(dest="study_command", metavar="STUDY", required=True)
    mod = sub.add_parser(
        "modifications",
        help="BN, residual and SE switched on/off in VGG, Inception, MobileNet V2/V3",
        description="Train each model (--method), attack it on CIFAR-10 test images with FGSM, "
        "PGD and C&W, and write the table: clean accuracy, attack success rate among initially "
        "correct examples, seconds per attacked image, 1-SSIM over successful examples. A rerun "
        "with the same --out skips finished models.",
    )
    mod.add_argument("--out", required=True, help="study folder (table, rows/, models/)")
    mod.add_argument(
        "--models",
        help="comma list, e.g. 'mobilenet_v3,mobilenet_v3[se=off]' (default: each network's "
        "standard form plus each switch flipped alone, 16 models)",
    )
    mod.add_argument("--method", default="pgd", choices=("pgd", "clean", "fgsm-rs"))
    mod.add_argument("--preset", default="tiny", help="training schedule and data sizes")
    mod.add_argument("--epochs", type=int)
    mod.add_argument("--steps", type=int, help="attack steps of adversarial training")
    mod.add_argument("--val-steps", type=int, help="PGD steps of validation during training")
    mod.add_argument("--train-size", type=int, help="training images (default: preset)")
    mod.add_argument("--val-size", type=int, help="held-out validation images (default: preset)")
    mod.add_argument("--test-size", type=int, default=500, help="CIFAR-10 test images attacked")
    mod.add_argument("--attacks", default="fgsm,pgd20,cw", help="comma list of suite attacks")
    mod.add_argument(
        "--eps", default=str(DEFAULT_EPS), help="Linf budget of FGSM/PGD (and training)"
    )
    mod.add_argument("--eps-l2", default="0.5", help="L2 budget of C&W")
    mod.add_argument("--cw-steps", type=int, help="C&W Adam steps per binary-search round")
    mod.add_argument("--batch-size", type=int, default=100, help="attack batch size")
    mod.add_argument("--seed", type=int, default=0)
    mod.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    add_data_arguments(mod)
    mod.set_defaults(func=run_modifications)


def run_modifications(args: argparse.Namespace) -> int:
    from pathlib import Path

    from robnas.errors import ConfigError
    from robnas.evaluation import parse_attack_list
    from robnas.studies.modifications import Study, StudySettings, parse_models, validate

    try:
        eps_l2 = float(args.eps_l2)
    except ValueError:
        raise ConfigError(f"cannot read --eps-l2 {args.eps_l2!r}; write it like 0.5") from None
    settings = StudySettings(
        models=tuple(parse_models(args.models)),
        method=args.method,
        preset=args.preset.name,
        epochs=args.epochs,
        train_size=args.train_size,
        val_size=args.val_size,
        test_size=args.test_size,
        steps=args.steps,
        val_steps=args.val_steps,
        attacks=tuple(parse_attack_list(args.attacks)),
        eps=float(Eps.parse(args.eps)),
        eps_l2=eps_l2,
        cw_steps=args.cw_steps,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
        data_dir=args.data_dir,
    )
    validate(settings)
    total = len(settings.models)
    done = [0]

    def report(name: str, row: dict[str, Any], skipped: bool) -> None:
        done[0] += 1
        what = "done earlier" if skipped else f"trained in {row['train_seconds']:.0f} s"
        rates = ", ".join(f"{a} {100 * row[f'{a}_success_rate']:.1f}%" for a in settings.attacks)
        print(
            f"[{done[0]}/{total}] {name}: {what}; clean {100 * row['clean_acc']:.1f}%; "
            f"success {rates}",
            file=sys.stderr,
        )

    study = Study(settings, Path(args.out), on_model=report)
    study.run()
    print(f"wrote {args.out}/modifications.csv, modifications.md, modifications.png")
    return 0
