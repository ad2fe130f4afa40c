"""Synthetic study runs with planted (or no) effects, shared by the analysis tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from robnas.genotype import Genotype
from robnas.space.search_space import get_space

N_BOOT = 300
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_run(
    root: Path,
    *,
    effect: str,
    n: int = 60,
    seed: int = 0,
    fsp: bool = True,
    status: list[str] | None = None,
) -> Path:
    """A supernet-style run: darts genotypes of spread density, pgd20_acc as a fraction."""
    space = get_space("darts")
    macro = space.resolve_macro("tiny")
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(n):
        p = rng.uniform(0.1, 0.9)  # per-trial density, so density varies widely
        edges = [
            frozenset(op for op in space.ops if rng.random() < p) for _ in range(space.num_edges)
        ]
        g = Genotype("darts", (space.cell_from_edges(edges),))
        robust = 30 + rng.normal(0, 2)
        if effect == "density":
            robust += 20 * space.density(g)
        elif effect == "edge":  # a conv on edge 3 (1→3, a cell-input edge) adds 6 points
            robust += 6 * ("sep_conv_3x3" in edges[3])
        row = {
            "trial": t,
            "genotype": g.to_str(),
            "status": "ok" if status is None else status[t],
            "num_params": space.num_params(g, macro),
            "flops": 1000,
            "seconds": 1.0,
            "clean_acc": (70 + rng.normal(0, 3)) / 100,
            "pgd20_acc": robust / 100,
            "jac_norm": rng.gamma(2.0),
            "density": space.density(g),
            "edge_density": space.edge_density(g),
        }
        if fsp:  # the deeper cells (3, 4) carry the signal: lower distance, more robust
            for k in range(5):
                row[f"fsp_dist_cell{k}"] = rng.gamma(2.0) + (k >= 3) * (50 - robust) * 0.3
        rows.append(row)
    root.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(root / "trials.csv", index=False)
    settings = {"mode": "supernet", "space": "darts", "objective": "pgd20_acc"}
    (root / "config.json").write_text(json.dumps(settings))
    summary = {"settings": settings, "objective": {"key": "pgd20_acc", "direction": "maximize"}}
    (root / "summary.json").write_text(json.dumps(summary))
    return root
