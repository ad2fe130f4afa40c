"""`robnas …`: one module per sub-command in this package, found at start-up.

Each module defines `register(subparsers)` that adds its parser and sets `func(args) -> int`.
Commands parse and print; the work happens in the library. A `RobnasError` becomes one line on
stderr and exit code 2, never a traceback. Flags that name a value are parsed once, at this
edge: `--preset` by `parse_values` for every command, the others by the command that owns them
(into `robnas.specs` values).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence

from robnas import _version
from robnas.errors import RobnasError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="robnas", description="Neural architecture search for adversarially robust cells."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument(
        "--version", action="version", version=f"robnas {_version()}", help="print the version"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        module.register(subparsers)
    return parser


def parse_values(args: argparse.Namespace) -> argparse.Namespace:
    """Every command's --preset becomes its Preset, here and nowhere else (commands read the
    Preset, never the name); UnknownName for an unknown one."""
    if isinstance(getattr(args, "preset", None), str):
        from robnas.config import get_preset

        args.preset = get_preset(args.preset)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(parse_values(args).func(args) or 0)
    except RobnasError as err:
        print(f"robnas {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"robnas {args.command}: interrupted; rerun with --resume to continue", file=sys.stderr
        )
        return 130


if __name__ == "__main__":
    sys.exit(main())
