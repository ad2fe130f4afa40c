"""`robnas arch info ARCH`: size, FLOPs and density of any buildable architecture.
`robnas arch draw ARCH --out cell.png`: one cell of a genotype drawn as a graph."""

from __future__ import annotations

import argparse
import json

from robnas.cli._common import add_size_arguments, size_of

ARCH_HELP = "genotype string, published name (robnet_large) or baseline (resnet18)"


def add_arch_arguments(
    parser: argparse.ArgumentParser, *, metavar: str = "ARCH", help: str = ARCH_HELP
) -> None:
    """ARCH and the options that select its macro size; shared by commands that build an arch."""
    parser.add_argument("arch", metavar=metavar, help=help)
    parser.add_argument("--space", help="space name or TOML file, for genotypes of a user space")
    add_size_arguments(parser)


def resolve_from_args(args: argparse.Namespace):  # -> ArchSpec
    from robnas.models.resolve import resolve_arch

    return resolve_arch(args.arch, args.dataset, space=args.space, size=size_of(args))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("arch", help="inspect architectures")
    sub = parser.add_subparsers(dest="arch_command", metavar="ARCH_COMMAND", required=True)
    info = sub.add_parser(
        "info", help="params, FLOPs, density, edge density and the canonical genotype"
    )
    add_arch_arguments(info)
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=run_info)
    draw = sub.add_parser(
        "draw", help="draw a cell as a graph (nodes, edges labelled by op) to PNG"
    )
    add_arch_arguments(draw)
    draw.add_argument("--out", required=True, help="image file to write (.png, .svg or .pdf)")
    draw.add_argument(
        "--cell", type=int, default=0, help="index of the cell (layer) to draw; default 0"
    )
    draw.set_defaults(func=run_draw)


def run_info(args: argparse.Namespace) -> int:
    from robnas.export.record import describe
    from robnas.space.budget import format_count

    info = describe(resolve_from_args(args))
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"arch          {info['arch'] if info['genotype'] is None else info['genotype']}")
    if info["macro"]:
        print(f"macro         {', '.join(f'{k}={v}' for k, v in info['macro'].items())}")
    print(f"dataset       {info['dataset']}")
    print(f"params        {info['num_params']:,} ({format_count(info['num_params'])})")
    print(f"FLOPs (MACs)  {info['flops']:,} ({format_count(info['flops'])})")
    if info["density"] is not None:
        print(f"density       {info['density']:.3f}")
        print(f"edge density  {info['edge_density']:.3f}")
    return 0


def run_draw(args: argparse.Namespace) -> int:
    from robnas.analysis.draw import draw_spec

    path = draw_spec(resolve_from_args(args), args.out, cell=args.cell)
    print(f"wrote {path}")
    return 0
