"""Our PGD-20 against torchattacks' PGD-20: same model, same batch, one run, repeated.

Throughput (images/s) is measured alternately for both implementations; the ratio reported is the
median over repeats. Without random start both are the same algorithm, so their robust
accuracies must be identical (labels are the model's own clean predictions, so clean accuracy is
100% and every flip is the attack's doing). The last line is one JSON object.

    python benchmarks/bench_attacks.py [--arch resnet18] [--batch 64] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from robnas.attacks import PGD
from robnas.models.resolve import build

NB201 = "nb201:|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


class _Trained:
    def __init__(self, eval_images: torch.Tensor) -> None:
        self.eval_images = eval_images


def train_briefly(model: torch.nn.Module, steps: int, batch: int) -> _Trained:
    """A few Adam steps on real CIFAR-10 (ROBNAS_DATA) so the model reacts to its input."""
    import torch.nn.functional as F

    from robnas.data.datasets import batches, load_dataset, resolve_data_dir

    root = resolve_data_dir()  # $ROBNAS_DATA; without it loading stops with one line
    train = load_dataset("cifar10", "train", data_dir=root, limit=steps * 32 or 32, seed=0)
    test = load_dataset("cifar10", "test", data_dir=root, limit=batch, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    gen = torch.Generator().manual_seed(0)
    for _, (x, y) in zip(range(steps), batches(train, 32, shuffle=True, generator=gen)):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return _Trained(test.floats())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default=NB201)
    parser.add_argument("--C", type=int, default=8)
    parser.add_argument("--N", type=int, default=1)
    parser.add_argument("--train-steps", type=int, default=40, help="brief training first")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--eps", type=float, default=8 / 255)
    args = parser.parse_args()

    import torchattacks

    torch.manual_seed(0)
    macro = {"C": args.C, "N": args.N} if args.arch.startswith("nb201:") else {}
    model = build(args.arch, "cifar10", **macro)
    images = train_briefly(model, args.train_steps, args.batch).eval_images
    model.eval()
    with torch.no_grad():
        labels = model(images).argmax(1)
    alpha = args.eps / 4
    ours = PGD(eps=args.eps, alpha=alpha, steps=20, random_start=False)
    theirs = torchattacks.PGD(model, eps=args.eps, alpha=alpha, steps=20, random_start=False)

    def run_ours() -> torch.Tensor:
        return ours(model, images, labels)

    def run_theirs() -> torch.Tensor:
        return theirs(images, labels)

    run_ours(), run_theirs()  # warm-up
    rates: dict[str, list[float]] = {"ours": [], "torchattacks": []}
    advs: dict[str, torch.Tensor] = {}
    for r in range(args.repeats):
        order = [("ours", run_ours), ("torchattacks", run_theirs)]
        for name, fn in order if r % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            advs[name] = fn()
            rates[name].append(args.batch / (time.perf_counter() - start))
    ratios = [a / b for a, b in zip(rates["ours"], rates["torchattacks"])]
    with torch.no_grad():
        acc = {k: float((model(v).argmax(1) == labels).float().mean()) for k, v in advs.items()}
    same_pred = float(
        (model(advs["ours"]).argmax(1) == model(advs["torchattacks"]).argmax(1)).float().mean()
    )
    for name, values in rates.items():
        print(f"{name:>13}: median {statistics.median(values):8.1f} images/s  ({values})")
    print(f"robust accuracy: ours {acc['ours']:.4f}, torchattacks {acc['torchattacks']:.4f}")
    result = {
        "pgd20_ours_over_torchattacks": statistics.median(ratios),
        "ratios": ratios,
        "ours_images_per_s": statistics.median(rates["ours"]),
        "torchattacks_images_per_s": statistics.median(rates["torchattacks"]),
        "robust_acc_ours": acc["ours"],
        "robust_acc_torchattacks": acc["torchattacks"],
        "same_prediction_fraction": same_pred,
        "max_abs_adv_diff": float((advs["ours"] - advs["torchattacks"]).abs().max()),
        "arch": args.arch,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
