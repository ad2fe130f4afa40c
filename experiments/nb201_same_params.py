"""Reproduce the NB201 robustness dataset's same-parameter-count observation (Jung et al., ICLR 2023).

Networks with exactly two nor_conv_3x3 and no nor_conv_1x1 share one parameter count; the paper
reports their mean adversarial accuracy ranges from 20% to 41%. This script recomputes the spread
from the dataset, checks the parameter counts really are equal, and lists which edges the most
robust of them put their convolutions on. Writes experiments/results/nb201_same_params/nb201_same_params.md.

    python experiments/nb201_same_params.py [--data DIR] [--top 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _options import add_benchmark_argument

from robnas.analysis.nb201 import same_params_study, same_params_tables
from robnas.io import atomic_write_text
from robnas.models import sizing
from robnas.space.search_space import get_space

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_benchmark_argument(parser, "--data")
    parser.add_argument("--top", type=int, default=20, help="how many count as the most robust")
    parser.add_argument(
        "--out", type=Path, default=HERE / "results" / "nb201_same_params" / "nb201_same_params.md"
    )
    args = parser.parse_args()

    study = same_params_study(args.data, top=args.top)
    space = get_space("nb201")
    macro = space.resolve_macro("paper")
    params = sorted({sizing.num_params(space, space.parse(a), macro) for a in study.table["arch"]})
    lines = [
        "# NB201: same parameter count, different robustness",
        "",
        f"Data: `{args.data}`. Command: `python experiments/nb201_same_params.py --top {args.top}`.",
        f"Parameter count of every selected network (robnas NB201 macro, C=16, N=5, CIFAR-10): "
        f"{', '.join(f'{p:,}' for p in params)} ({len(params)} distinct value(s)).",
        "",
        *same_params_tables(study),
    ]
    text = "\n".join(lines).rstrip() + "\n"
    atomic_write_text(args.out, text)
    print(text)
    print(f"written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
