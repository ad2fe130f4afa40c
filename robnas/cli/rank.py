"""`robnas rank SUPERNET --benchmark PATH`: does a trained supernet rank cells as the ground truth does?"""

from __future__ import annotations

import argparse
from pathlib import Path

from robnas.cli._common import add_data_arguments
from robnas.objectives.scores import DEFAULT_SCORE, NASWOT_SCORES, SCORES
from robnas.specs import Eps, Size


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rank",
        help="score benchmark cells with a trained supernet; Kendall/Spearman/top-k vs ground truth",
        description="Score NB201 isomorph classes drawn uniformly with the supernet's inherited "
        "weights (BatchNorm recalibrated per cell) on images it never trained on, and compare with "
        "the robustness dataset, beside counting parameters, FLOPs and the indicators. Resumable.",
    )
    parser.add_argument("supernet", help="supernet checkpoint (robnas supernet train's last.pt)")
    parser.add_argument("--benchmark", required=True, help="NB201 robustness dataset folder")
    parser.add_argument("--archs", type=int, default=500, help="isomorph classes to score")
    parser.add_argument("--images", type=int, default=1000, help="held-out scoring images")
    parser.add_argument("--recal-batches", type=int, default=4, help="BN recalibration batches")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--fgsm-eps", default="1/255", help="FGSM eps of the robust score (0: none)"
    )
    parser.add_argument(
        "--score",
        choices=tuple(SCORES),
        default=DEFAULT_SCORE,
        help="the ranker reported as `score` (what a budgeted search picks cells by): the "
        "parameter count across sizes and, within equal counts, the mean rank of the supernet "
        "and NASWOT at initialisation, the supernet alone, or NASWOT alone (the two NASWOT "
        f"scores add naswot to --indicators; default {DEFAULT_SCORE})",
    )
    parser.add_argument(
        "--indicators",
        default="",
        help="also rank by these indicators, alone and as params+X: the parameter count first, "
        "the indicator within equal counts; e.g. jac_norm,hessian_eig",
    )
    parser.add_argument(
        "--indicators-at",
        choices=("init", "inherited"),
        default="init",
        help="compute the indicators on each cell built from one seeded initialisation "
        "(default; training-free, as NASWOT and ZiCo are meant) or on the supernet's inherited "
        "weights (then --score params+supernet)",
    )
    parser.add_argument(
        "--indicator-size",
        help="at initialisation, the size to build each cell at: a size name of the space or C=16,N=5; "
        "default paper (the deployed NB201 network, C=16 N=5)",
    )
    parser.add_argument(
        "--indicator-images",
        type=int,
        default=128,
        help="held-out images (class-balanced) the indicators see",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", required=True, help="output folder (cells.csv, ranking.md/json)")
    parser.add_argument("--no-progress", action="store_true")
    add_data_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from robnas.data.datasets import load_dataset
    from robnas.data.tabular import load_benchmark
    from robnas.device import resolve_device
    from robnas.errors import ConfigError
    from robnas.indicators import INDICATORS
    from robnas.ranking.run import RankSettings, load_supernet, rank_supernet, ranking_images

    if args.archs < 2 or args.images < 2 or args.recal_batches < 1:
        raise ConfigError("need --archs >= 2, --images >= 2 and --recal-batches >= 1")
    indicators = tuple(n for n in args.indicators.split(",") if n)
    for name in indicators:
        INDICATORS.get(name)  # unknown names refused before any work
    if args.indicator_size and args.indicators_at != "init":
        raise ConfigError(
            "--indicator-size needs --indicators-at init (inherited weights are the supernet's size)"
        )
    if args.score in NASWOT_SCORES:
        if args.indicators_at != "init":
            raise ConfigError(
                f"--score {args.score} computes NASWOT at initialisation: "
                "drop --indicators-at inherited, or add --score params+supernet"
            )
        indicators = indicators if "naswot" in indicators else ("naswot", *indicators)
    if args.indicator_images < 2:
        raise ConfigError("need --indicator-images >= 2")
    device = resolve_device(args.device)
    bench = load_benchmark(args.benchmark)
    supernet, ckpt = load_supernet(args.supernet)
    if supernet.space.name != "nb201":
        raise ConfigError(f"{args.supernet} is a {supernet.space.name} supernet; rank needs nb201")
    data = load_dataset(supernet.dataset, "train", data_dir=args.data_dir)
    recal, heldout = ranking_images(
        ckpt,
        data,
        args.supernet,
        images=args.images,
        recal_images=args.recal_batches * args.batch_size,
        seed=args.seed,
    )
    settings = RankSettings(
        archs=args.archs,
        recal_batches=args.recal_batches,
        batch_size=args.batch_size,
        fgsm_eps=float(Eps.parse(args.fgsm_eps, allow_zero=True)),
        indicators=indicators,
        indicators_at=args.indicators_at,
        indicator_macro=(
            supernet.space.resolve_size(Size.parse(args.indicator_size), base=supernet.macro)
            if args.indicator_size
            else None
        ),
        indicator_images=args.indicator_images,
        score=args.score,
        seed=args.seed,
    )
    bar = None if args.no_progress else tqdm(total=args.archs, desc="cells", unit="cell")

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.n = done
            bar.refresh()

    summary = rank_supernet(
        supernet,
        bench,
        recal=recal,
        heldout=heldout,
        out_dir=args.out,
        settings=settings,
        device=device,
        progress=progress,
    )
    if bar is not None:
        bar.close()
    print((Path(args.out) / "ranking.md").read_text(), end="")
    print(f"{summary['cells']} cells; table in {args.out}/cells.csv")
    return 0
