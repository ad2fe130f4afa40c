"""`robnas export ARCH --checkpoint PATH` / `robnas export RUN --top K`: files for others to use."""

from __future__ import annotations

import argparse
from pathlib import Path

from robnas.cli._common import size_of
from robnas.cli.arch import add_arch_arguments
from robnas.export import FORMATS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write an architecture as JSON, a weights checkpoint, torch.export, TorchScript or ONNX",
        description=(
            "Export ARCH (genotype string, published or baseline name) with --checkpoint weights, "
            "or the --top K architectures of a study RUN directory. Formats: json (versioned "
            "architecture record), pt (checkpoint for robnas.load), pt2 (torch.export "
            "ExportedProgram: torch.export.load(path).module(), recommended for PyTorch), "
            "torchscript (for older consumers), onnx (opset 17); pt2, torchscript and onnx take "
            "any batch size. Give several as json,onnx or repeat --format."
        ),
    )
    add_arch_arguments(  # the shared ARCH positional also takes a run directory
        parser,
        metavar="ARCH|RUN",
        help="genotype string, published/baseline name, or a study run directory",
    )
    parser.add_argument(
        "--format",
        dest="formats",
        action="append",
        metavar="FORMAT",
        help=f"one or more of {', '.join(FORMATS)} (comma-separated or repeated; default json)",
    )
    parser.add_argument("--checkpoint", help="weights for ARCH (a robnas training checkpoint)")
    parser.add_argument(
        "--top", type=int, help="export the K best architectures of the study run directory RUN"
    )
    parser.add_argument(
        "--out", help="output folder (default: ./export, or RUN/export for a study run)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robnas.checkpoint import read_checkpoint, spec_for_checkpoint
    from robnas.errors import ConfigError
    from robnas.export.formats import export_arch, parse_formats
    from robnas.export.run import export_run

    formats = parse_formats(args.formats or ["json"])
    target = Path(args.arch)
    if target.is_dir():
        if args.checkpoint:
            raise ConfigError("--checkpoint applies to ARCH; a run's weights come from the run")
        if args.top is None:
            raise ConfigError(f"{target} is a folder: pass --top K to export a run's K best")
        results = export_run(target, top=args.top, formats=formats, out_dir=args.out)
        for item in results:
            weights = {"trained": "trained weights", "supernet": "supernet weights"}.get(
                str(item.weights), "no weights"
            )
            print(f"top {item.rank}  {item.genotype}  ({weights})")
            if item.note:
                print(f"  note: {item.note}")
            for path in item.files:
                print(f"  wrote {path}")
        return 0
    if args.top is not None:
        raise ConfigError(f"--top needs a study run directory; {args.arch!r} is not a folder")
    out = args.out or "export"
    if args.checkpoint:
        ckpt = read_checkpoint(args.checkpoint)
        spec = spec_for_checkpoint(
            args.arch,
            ckpt,
            dataset=args.dataset,
            space=args.space,
            size=size_of(args),
        )
        paths = export_arch(spec, out, formats, checkpoint=ckpt, source=args.checkpoint)
    else:
        from robnas.cli.arch import resolve_from_args

        paths = export_arch(resolve_from_args(args), out, formats)
    for path in paths:
        print(f"wrote {path}")
    return 0
