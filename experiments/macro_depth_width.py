"""CPU-scale test of two RobustWRN findings: "shrink the last stage" and "deep and narrow beats
wide and shallow at equal parameters" (Huang et al. 2021).

Five three-stage pre-activation WRNs with matched parameter counts (each within 2% of the
reference WRN-26-1, 369,498 parameters): the stage channels are scaled by one factor k, solved per
configuration, so depth and width trade off at equal parameters. Each is adversarially trained
from scratch with FGSM-RS (fast AT; PGD-3 costs twice as much per step on CPU) on a class-balanced
CIFAR-10 training subset and attacked with PGD-20 (eps 8/255, step 2/255) on held-out test images.
One seed per configuration. Resumable: training checkpoints every epoch under --work, a finished
configuration is a row of the CSV and is skipped on the next run.

    OMP_NUM_THREADS=1 nice -n 10 python experiments/macro_depth_width.py \
        [--train-images 2000] [--epochs 5] [--test-images 500] [--work runs/macro_depth_width]
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch

from robnas.attacks.pgd import PGD
from robnas.config import TrainConfig
from robnas.data.datasets import load_dataset, split_train_val
from robnas.io import atomic_write_text
from robnas.models.scaling import macro_cost
from robnas.models.wrn import MacroConfig, build_macro
from robnas.training.loop import train
from robnas.training.validate import evaluate_robust

HERE = Path(__file__).resolve().parent
REFERENCE = MacroConfig((4, 4, 4), (1, 1, 1))  # WRN-26-1: 16/32/64 channels, 369,498 params

# name -> (depths, channel ratio per stage relative to 16, what it tests)
CONFIGS: dict[str, tuple[tuple[int, int, int], tuple[float, float, float], str]] = {
    "deep_narrow": ((4, 4, 4), (1.0, 2.0, 4.0), "reference: 12 blocks, WRN channel ratio"),
    "medium": ((2, 2, 2), (1.0, 2.0, 4.0), "6 blocks, wider"),
    "wide_shallow": ((1, 1, 1), (1.0, 2.0, 4.0), "3 blocks, widest"),
    "last_shallow": ((5, 5, 2), (1.0, 2.0, 4.0), "12 blocks, last stage has 2"),
    "last_narrow": ((4, 4, 4), (1.0, 2.0, 1.6), "12 blocks, last stage 0.8x stage 2 (WRN-34-R)"),
}
# as run: three processes sharing the configurations (each resumable on its own)
COMMAND = (
    "for grp in 'deep_narrow last_narrow' 'medium last_shallow' wide_shallow; do "
    "OMP_NUM_THREADS=1 nice -n 10 "
    "python experiments/macro_depth_width.py --only $grp & done"
)
FIELDS = [
    "name",
    "depths",
    "channels",
    "params",
    "macs",
    "train_images",
    "epochs",
    "method",
    "test_images",
    "clean_acc",
    "pgd20_acc",
    "train_seconds",
    "eval_seconds",
]


def matched(depths: tuple[int, ...], ratio: tuple[float, ...], target: int) -> MacroConfig:
    """The config of these depths whose channels (16 * ratio * k, even) best match `target`."""
    best: MacroConfig | None = None
    for step in range(40, 1200):
        k = step / 100
        channels = tuple(max(2, 2 * round(16 * r * k / 2)) for r in ratio)
        cfg = MacroConfig(depths, (1, 1, 1), base_channels=channels)
        if best is None or abs(macro_cost(cfg).params - target) < abs(
            macro_cost(best).params - target
        ):
            best = cfg
    assert best is not None
    return best


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def write_rows(path: Path, rows: list[dict[str, object]]) -> None:
    lines = [",".join(FIELDS)]
    lines += [",".join(str(r[k]) for k in FIELDS) for r in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def binomial_se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1e-12) / n)


def report(rows: list[dict[str, str]], command: str, wall: float) -> str:
    ref = next((r for r in rows if r["name"] == "deep_narrow"), None)
    out = [
        "# Depth vs width and the last stage at equal parameters (CPU scale)",
        "",
        f"Command: `{command}`",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores shared with other jobs, "
        f"1 thread (OMP_NUM_THREADS=1, nice 10), torch {torch.__version__}. "
        f"Wall time summed over the configurations below (several ran in parallel): "
        f"{wall / 60:.1f} min.",
        "",
        "Pre-activation WRN blocks, ReLU, no SE; channels scaled per configuration so all have "
        "the reference's parameter count within 2%. Training: FGSM-RS (Wong et al. 2020: uniform "
        "start, one step of 1.25 eps = 10/255, eps 8/255) on a class-balanced CIFAR-10 training "
        "subset; score: PGD-20 "
        "(eps 8/255, step 2/255, random start) on class-balanced CIFAR-10 *test* images. "
        "`pgd20_acc` counts an image when it is classified correctly both clean and attacked. "
        "SE = binomial standard error sqrt(p(1-p)/n); the difference to the reference is called "
        "significant only when it exceeds 2 standard errors of the difference "
        "(sqrt(SE_a^2 + SE_b^2), treating the two as independent, which overstates the noise a "
        "little since they share test images, and ignores the larger seed-to-seed variance "
        "of training, which one seed per configuration cannot measure).",
        "",
        "| config | depths | channels | params | MACs | clean | PGD-20 | SE | vs deep_narrow |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        n = int(r["test_images"])
        p = float(r["pgd20_acc"])
        se = binomial_se(p, n)
        verdict = ""
        if ref is not None and r is not ref:
            q = float(ref["pgd20_acc"])
            diff = p - q
            se_diff = math.hypot(se, binomial_se(q, int(ref["test_images"])))
            call = "beyond noise" if abs(diff) > 2 * se_diff else "within noise"
            verdict = f"{100 * diff:+.1f} pts ({call}, 2 SE = {200 * se_diff:.1f})"
        out.append(
            f"| {r['name']} | {r['depths']} | {r['channels']} | {int(r['params']):,} | "
            f"{int(r['macs']) / 1e6:.0f}M | {100 * float(r['clean_acc']):.1f}% | "
            f"{100 * p:.1f}% | {100 * se:.1f} | {verdict} |"
        )
    missing = [name for name in CONFIGS if name not in {r["name"] for r in rows}]
    if missing:
        out += [
            "",
            f"Not finished when this file was written: {', '.join(missing)} (the same command "
            "resumes them; their rows are appended to the CSV).",
        ]
    first = rows[0] if rows else None
    if first is not None:
        out += [
            "",
            f"Training: {first['train_images']} images, {first['epochs']} epochs, "
            f"{first['method']}, batch 64, SGD lr 0.1 cosine, weight decay 5e-4; "
            f"{first['test_images']} test images attacked.",
        ]
    out += [
        "",
        "## Caveats",
        "",
        "- Scale: networks of ~0.37M parameters (the papers use 20M-270M), a few epochs on a few "
        "thousand images on CPU, one seed each. Robust accuracy is far below the papers' and "
        "the ranking of configurations can change with longer training.",
        "- FGSM-RS training instead of PGD-10 AT (CPU time); PGD-20 evaluation only, no "
        "AutoAttack, so robust accuracy is an upper bound.",
        "- MACs: the depth/width configurations (same channel ratio 1:2:4) match within 3%; the "
        "last-stage ones do not (a shrunk last stage moves parameters to the 32x32 and 16x16 "
        "stages, which cost more MACs per parameter; see the table).",
        "- Wall times: the machine (2 cores) ran about 20 other processes (load average ~20) and "
        "these ran at nice 10, so they got a few percent of a core; wall time says little about "
        "cost (one FGSM-RS epoch of ~1,900 images is ~15-20 CPU-seconds here).",
        "- Differences within 2 SE of the difference are noise at this sample size; seed-to-seed "
        "variance of training is not measured and is usually larger than the test-set SE.",
    ]
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-images", type=int, default=2000)
    parser.add_argument("--val-images", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--test-images", type=int, default=500)
    parser.add_argument("--only", nargs="*", help="run only these configurations")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rewrite the markdown from the CSV, train nothing",
    )
    parser.add_argument("--work", type=Path, default=Path("runs/macro_depth_width"))
    parser.add_argument(
        "--out", type=Path, default=HERE / "results" / "macro_depth_width" / "macro_depth_width"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)

    csv_path, md_path = args.out.with_suffix(".csv"), args.out.with_suffix(".md")
    if args.report_only:
        rows = read_rows(csv_path)
        wall = sum(float(r["train_seconds"]) + float(r["eval_seconds"]) for r in rows)
        atomic_write_text(md_path, report(rows, COMMAND, wall))
        return 0
    rows = read_rows(csv_path)
    done = {r["name"] for r in rows}
    target = macro_cost(REFERENCE).params
    data = load_dataset("cifar10", "train", limit=args.train_images + args.val_images, seed=0)
    train_data, val_data = split_train_val(data, args.val_images, seed=0)
    test = load_dataset("cifar10", "test", limit=args.test_images, seed=1)
    cfg = TrainConfig(
        epochs=args.epochs,
        method="fgsm-rs",
        batch_size=64,
        lr=0.1,
        lr_batch=64,
        weight_decay=5e-4,
        warmup_epochs=0.5,
        warmup_start=0.1,
        final_lr=0.01,
        val_every=args.epochs,
        val_size=args.val_images,
        val_steps=10,
        device="cpu",
        seed=0,
    )
    attack = PGD(8 / 255, alpha=2 / 255, steps=20, seed=0)
    for name, (depths, ratio, _) in CONFIGS.items():
        if name in done or (args.only and name not in args.only):
            continue
        mc = matched(depths, ratio, target)
        cost = macro_cost(mc)
        print(f"{name}: depths {mc.depths} channels {mc.base_channels} params {cost.params:,}")
        torch.manual_seed(0)
        model = build_macro(mc)
        began = time.perf_counter()
        train(model, train_data, val_data, cfg, args.work / name, resume=True)
        trained = time.perf_counter()
        scores = evaluate_robust(model, test, attack, batch_size=100, device="cpu")
        row: dict[str, object] = {
            "name": name,
            "depths": "-".join(map(str, mc.depths)),
            "channels": "-".join(map(str, mc.base_channels)),
            "params": cost.params,
            "macs": cost.macs,
            "train_images": len(train_data),
            "epochs": args.epochs,
            "method": "fgsm-rs",
            "test_images": len(test),
            "clean_acc": round(scores["clean_acc"], 4),
            "pgd20_acc": round(scores["robust_acc"], 4),
            "train_seconds": round(trained - began, 1),
            "eval_seconds": round(time.perf_counter() - trained, 1),
        }
        print(row, flush=True)
        rows = [*read_rows(csv_path), row]  # type: ignore[list-item]
        write_rows(csv_path, rows)  # type: ignore[arg-type]
    rows = read_rows(csv_path)
    wall = sum(float(r["train_seconds"]) + float(r["eval_seconds"]) for r in rows)
    atomic_write_text(md_path, report(rows, COMMAND, wall))
    print(f"wrote {csv_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
