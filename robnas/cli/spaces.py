"""`robnas spaces`: the search spaces with their edges, ops and size."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("spaces", help="list the search spaces")
    parser.add_argument("paths", nargs="*", help="also describe these space TOML files")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from robnas.space.search_space import CellSpace, get_space, space_names

    rows: list[dict] = []
    for name in space_names() + list(args.paths):
        space = get_space(name)
        cells = space if isinstance(space, CellSpace) else None  # a macro space: whole networks
        rows.append(
            {
                "space": space.name,
                "edges": cells.num_edges if cells else 0,
                "ops": space.describe(),  # a macro space lists its choices in place of ops
                "edge": cells.edge_kind if cells else "macro",
                "cells": space.size,
                "description": space.description,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'space':<10} {'edges':>5} {'edge':<7} {'cells':>16}  ops")
    for r in rows:
        print(
            f"{r['space']:<10} {r['edges']:>5} {r['edge']:<7} {r['cells']:>16,}  {', '.join(r['ops'])}"
        )
    return 0
