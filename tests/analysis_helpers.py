"""Synthetic study runs with planted (or no) effects, shared by the analysis tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robnas.config import TrainConfig
from robnas.genotype import Genotype
from robnas.models import sizing
from robnas.search.rundir import RunDir
from robnas.search.settings import MacroSettings, SupernetSettings, TabularSettings
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
            "num_params": sizing.num_params(space, g, macro),
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
    RunDir(root).init(supernet_settings(trials=n))
    pd.DataFrame(rows).to_csv(root / "trials.csv", index=False)  # a study's columns and values
    return root


def supernet_settings(**changes: Any) -> SupernetSettings:
    """The settings of a tiny supernet search of the darts space (what config.json holds)."""
    base = SupernetSettings(
        space="darts",
        strategy="random",
        objective="pgd20_acc",
        direction="maximize",
        trials=60,
        preset="tiny",
        search_macro={"C": 8, "layers": 5},
        train=TrainConfig(epochs=1),
    )
    return base.replace(**changes)


def tabular_settings(**changes: Any) -> TabularSettings:
    """The settings of a tabular search of the NB201 robustness dataset (what config.json holds)."""
    base = TabularSettings(
        space="nb201",
        strategy="random",
        objective="fgsm@1",
        trials=60,
        preset="paper",
        benchmark="nb201-robustness",
    )
    return base.replace(**changes)


def macro_settings(**changes: Any) -> MacroSettings:
    """The settings of a macro search of the wrn space (what config.json holds)."""
    base = MacroSettings(
        space="wrn",
        strategy="random",
        objective="pgd20_acc",
        trials=30,
        preset="tiny",
        final_size="default",
        search_macro={},
        train=TrainConfig(epochs=1),
    )
    return base.replace(**changes)


def make_macro_run(root: Path, *, n: int = 30, seed: int = 0) -> Path:
    """A macro-mode run of the wrn space: whole networks, no cells; robust accuracy follows size;
    the columns of MacroEvaluator (a low-fidelity score, the epochs a candidate reached)."""
    space = get_space("wrn")
    rng = np.random.default_rng(seed)
    rows = []
    for t in range(n):
        g = space.sample(rng)
        params = sizing.num_params(space, g)
        robust = 30 + 2 * np.log10(params) + rng.normal(0, 1)
        rows.append(
            {
                "trial": t,
                "genotype": g.to_str(),
                "status": "ok",
                "num_params": params,
                "pgd20_acc": robust / 100,
                "clean_acc": (70 + rng.normal(0, 3)) / 100,
                "pgd20_acc_low": (robust - 5 + rng.normal(0, 2)) / 100,
                "fidelity_epochs": float(1 + (t % 2)),
            }
        )
    RunDir(root).init(macro_settings(trials=n))
    pd.DataFrame(rows).to_csv(root / "trials.csv", index=False)
    return root
