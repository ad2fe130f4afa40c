"""A study run as the analysis sees it: the usable trials, accuracies in percent, genotypes parsed.

`load_run(path)` reads a run directory through `RunDir`: its SearchSettings (`space`,
`objective`, `mode`, `benchmark`) and `trials.csv`. Bad input is a ConfigError that says what to do.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from robnas.data.tabular import normalize_key
from robnas.errors import ConfigError, RobnasError
from robnas.genotype import Genotype
from robnas.search.rundir import TRIAL_SETTING_COLUMNS, RunDir
from robnas.search.settings import NetworkSettings, SearchSettings
from robnas.space.cell import CellSpace
from robnas.space.search_space import SearchSpace, cell_space, get_space
from robnas.specs import AttackSpec

MIN_TRIALS = 5
# trials.csv columns that are no measurement of the architecture
NON_METRICS = {"repeat", "trial", "genotype", "status", "seconds", *TRIAL_SETTING_COLUMNS}
FSP_CELL = re.compile(r"^fsp_dist_cell(\d+)$")

__all__ = [
    "FSP_CELL",
    "MIN_TRIALS",
    "NON_METRICS",
    "RunData",
    "choose_robust_key",
    "find_benchmark_dir",
    "is_accuracy",
    "load_run",
]


def is_accuracy(column: str) -> bool:
    """Clean or robust accuracy columns: `clean`, `*_acc`, or tabular `attack@eps` keys."""
    return column == "clean" or column.endswith("_acc") or "@" in column


@dataclass
class RunData:
    """The usable trials of one run (status ok, robust accuracy known), accuracies in %."""

    run_dir: Path
    settings: SearchSettings
    trials: pd.DataFrame
    robust_key: str
    robust_reason: str
    space: SearchSpace
    genotypes: list[Genotype]
    tabular: bool
    dropped: int = 0  # rows not used (failed status or missing robust accuracy)
    metrics: list[str] = field(default_factory=list)  # numeric metric columns

    @property
    def cells(self) -> bool:
        """The genotypes are cells (edges, ops, density); a macro space's are whole networks."""
        return isinstance(self.space, CellSpace)

    @property
    def cell_space(self) -> CellSpace:
        """The space, when `cells` (a macro space is refused with a one-line error)."""
        return cell_space(self.space)

    @property
    def n(self) -> int:
        return len(self.trials)

    @property
    def robust(self) -> np.ndarray:
        return self.trials[self.robust_key].to_numpy(dtype=float)

    def column(self, name: str) -> np.ndarray:
        return self.trials[name].to_numpy(dtype=float)


def _same_key(a: str, b: str, normalize: Callable[[str], str]) -> bool:
    try:
        return "@" in a and normalize(a) == normalize(b)
    except RobnasError:
        return False


def choose_robust_key(
    columns: list[str], objectives: list[str], pgd: str = "pgd20_acc"
) -> tuple[str, str]:
    """The study's objective, else the PGD accuracy `pgd` (the supernet search's robust metric,
    `pgd{attack_steps}_acc`), else the first `attack@eps` column."""
    for name in objectives:
        for column in columns:
            if is_accuracy(column) and (column == name or _same_key(column, name, normalize_key)):
                return column, "the study's objective"
    if pgd in columns:
        steps = pgd.removeprefix("pgd").removesuffix("_acc")
        return pgd, f"PGD-{steps} accuracy (the study's objective is not an accuracy column)"
    attacks = [c for c in columns if "@" in c and not c.startswith("clean")]
    if attacks:
        return attacks[0], f"the first attack@eps column (no objective or {pgd} recorded)"
    raise ConfigError(
        f"trials.csv has no robust accuracy column ({pgd} or attack@eps); "
        "is this a robnas study run directory?"
    )


def _read_trials(run: RunDir) -> pd.DataFrame:
    try:
        frame = run.read_trials()
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read {run.trials_path}: {err}") from None
    if "genotype" not in frame.columns:
        raise ConfigError(
            f"{run.trials_path} has no 'genotype' column; is it a robnas trials file?"
        )
    return frame


def load_run(run_dir: str | os.PathLike[str]) -> RunData:
    """Read and validate a study run; raises ConfigError with what to do when it does not fit."""
    root = Path(run_dir)
    if not root.is_dir():
        raise ConfigError(f"run directory {root} does not exist; pass the folder a study wrote")
    run = RunDir(root)
    settings = run.read_settings()
    frame, csv = _read_trials(run), run.trials_path
    columns = [str(c) for c in frame.columns]
    attack = settings.attack if isinstance(settings, NetworkSettings) else AttackSpec()
    key, reason = choose_robust_key(columns, [settings.objective], attack.metric)
    total = len(frame)
    if "status" in frame.columns:
        frame = frame[frame["status"].fillna("ok").astype(str) == "ok"]
    metrics = [
        c for c in columns if c not in NON_METRICS and pd.api.types.is_numeric_dtype(frame[c])
    ]
    frame = frame.copy()
    for col in metrics:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
        values = frame[col].to_numpy()
        if is_accuracy(col) and np.nanmax(np.abs(values), initial=0.0) <= 1.0:
            frame[col] = 100.0 * frame[col]  # fractions -> percent
    frame = frame[np.isfinite(frame[key].to_numpy(dtype=float))].reset_index(drop=True)
    if len(frame) < MIN_TRIALS:
        raise ConfigError(
            f"{csv} has {len(frame)} usable trials (status ok, {key} known); "
            f"need at least {MIN_TRIALS}: run more trials"
        )
    try:
        space = get_space(settings.space)
        genotypes = [space.parse(str(text)) for text in frame["genotype"]]
    except RobnasError as err:
        raise ConfigError(f"{csv}: {err}") from None
    if isinstance(space, CellSpace):
        for name, fn in (("density", space.density), ("edge_density", space.edge_density)):
            if name not in frame.columns or frame[name].isna().all():
                frame[name] = [fn(g) for g in genotypes]  # recomputed: pure genotype functions
                metrics.append(name)
    return RunData(
        run_dir=root,
        settings=settings,
        trials=frame,
        robust_key=key,
        robust_reason=reason,
        space=space,
        genotypes=genotypes,
        tabular=settings.mode == "tabular",
        dropped=total - len(frame),
        metrics=metrics,
    )


def find_benchmark_dir(settings: SearchSettings) -> Path | None:
    """The NB201 robustness dataset folder: the settings' `benchmark`, else under $ROBNAS_DATA."""
    benchmark = getattr(settings, "benchmark", None)  # a tabular search's dataset folder
    candidates = [benchmark] if benchmark else []
    if os.environ.get("ROBNAS_DATA"):
        candidates.append(os.environ["ROBNAS_DATA"])
    for text in candidates:
        path = Path(text).expanduser()
        for folder in (path, path / "nb201-robustness"):
            if (folder / "meta.json").is_file():
                return folder
    return None
