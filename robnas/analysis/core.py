"""Findings from a study run: does robustness follow density, budget, FSP and the indicators?

`analyze(run_dir)` reads a run directory (`trials.csv`, `summary.json`, `config.json`), tests
RobNet's three findings and the indicator correlations of the NB201 robustness dataset paper on
its trials, and writes `analysis/report.md` with PNG plots and CSV tables beside it. Everything is
computed in memory first, then each file is written atomically (report last), so bad input leaves
nothing half-written.

Accuracies are reported in percent (fractions in the run are scaled by 100).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from robnas.errors import ConfigError, RobnasError
from robnas.genotype import Genotype
from robnas.io import atomic_write_bytes
from robnas.space.search_space import SearchSpace, get_space

log = logging.getLogger(__name__)

MIN_TRIALS = 5
NON_METRICS = {"trial", "genotype", "status", "seconds"}
FSP_CELL = re.compile(r"^fsp_dist_cell(\d+)$")


def is_accuracy(column: str) -> bool:
    """Clean or robust accuracy columns: `clean`, `*_acc`, or tabular `attack@eps` keys."""
    return column == "clean" or column.endswith("_acc") or "@" in column


@dataclass
class RunData:
    """The usable trials of one run (status ok, robust accuracy known), accuracies in %."""

    run_dir: Path
    config: dict[str, Any]
    summary: dict[str, Any]
    trials: pd.DataFrame
    robust_key: str
    robust_reason: str
    space: SearchSpace
    genotypes: list[Genotype]
    tabular: bool
    dropped: int = 0  # rows not used (failed status or missing robust accuracy)
    metrics: list[str] = field(default_factory=list)  # numeric metric columns

    @property
    def n(self) -> int:
        return len(self.trials)

    @property
    def robust(self) -> np.ndarray:
        return self.trials[self.robust_key].to_numpy(dtype=float)

    def column(self, name: str) -> np.ndarray:
        return self.trials[name].to_numpy(dtype=float)


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ConfigError(f"cannot read {path}: {err}; fix or delete the file") from None
    return data if isinstance(data, dict) else {}


def _objective_names(*sources: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for source in sources:
        for where in (source, source.get("settings") or {}):
            value = where.get("objective") if isinstance(where, dict) else None
            if isinstance(value, str):
                names.append(value)
            elif isinstance(value, list | tuple):
                names.extend(str(v) for v in value)
    return names


def _same_key(a: str, b: str, normalize: Callable[[str], str]) -> bool:
    try:
        return "@" in a and normalize(a) == normalize(b)
    except RobnasError:
        return False


def choose_robust_key(columns: list[str], objectives: list[str]) -> tuple[str, str]:
    """The study's objective, else `pgd20_acc`, else the first `attack@eps` column."""
    from robnas.data.tabular import normalize_key  # `fgsm@1.0` and `fgsm@1/255` name `fgsm@1`

    for name in objectives:
        for column in columns:
            if is_accuracy(column) and (column == name or _same_key(column, name, normalize_key)):
                return column, "the study's objective"
    if "pgd20_acc" in columns:
        return "pgd20_acc", "PGD-20 accuracy (the study's objective is not an accuracy column)"
    attacks = [c for c in columns if "@" in c and not c.startswith("clean")]
    if attacks:
        return attacks[0], "the first attack@eps column (no objective or pgd20_acc recorded)"
    raise ConfigError(
        "trials.csv has no robust accuracy column (pgd20_acc or attack@eps); "
        "is this a robnas study run directory?"
    )


def _space_for(genotype_text: str, config: dict[str, Any]) -> SearchSpace:
    name = genotype_text.partition(":")[0]
    for candidate in (name, config.get("space"), (config.get("settings") or {}).get("space")):
        if isinstance(candidate, str) and candidate:
            try:
                return get_space(candidate)
            except RobnasError:
                continue
    raise ConfigError(
        f"cannot find the search space of genotype {genotype_text!r}; pass a known space"
    )


def load_run(run_dir: str | os.PathLike[str]) -> RunData:
    """Read and validate a study run; raises ConfigError with what to do when it does not fit."""
    root = Path(run_dir)
    if not root.is_dir():
        raise ConfigError(f"run directory {root} does not exist; pass the folder a study wrote")
    csv = root / "trials.csv"
    if not csv.is_file() or csv.stat().st_size == 0:
        raise ConfigError(f"{csv} is missing or empty; run the study first (robnas search ...)")
    try:
        frame = pd.read_csv(csv)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read {csv}: {err}") from None
    if "genotype" not in frame.columns:
        raise ConfigError(f"{csv} has no 'genotype' column; is it a robnas trials file?")
    config, summary = _read_json(root / "config.json"), _read_json(root / "summary.json")
    columns = [str(c) for c in frame.columns]
    key, reason = choose_robust_key(columns, _objective_names(summary, config))
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
    space = _space_for(str(frame["genotype"].iloc[0]), config)
    try:
        genotypes = [space.parse(str(text)) for text in frame["genotype"]]
    except RobnasError as err:
        raise ConfigError(f"{csv}: {err}") from None
    for name, fn in (("density", space.density), ("edge_density", space.edge_density)):
        if name not in frame.columns or frame[name].isna().all():
            frame[name] = [fn(g) for g in genotypes]  # recomputed: both are pure genotype functions
            metrics.append(name)
    tabular = "@" in "".join(metrics) or "tabular" in json.dumps(config).lower()
    return RunData(
        run_dir=root,
        config=config,
        summary=summary,
        trials=frame,
        robust_key=key,
        robust_reason=reason,
        space=space,
        genotypes=genotypes,
        tabular=tabular,
        dropped=total - len(frame),
        metrics=metrics,
    )


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    """A markdown table as lines, followed by a blank line."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    # a pipe inside a cell (genotype strings) would split it: escape it as GitHub markdown wants
    out += ["| " + " | ".join(str(v).replace("|", "\\|") for v in row) + " |" for row in rows]
    return [*out, ""]


def edge_labels(space: SearchSpace) -> list[tuple[str, bool]]:
    """(`j→k` label, edge leaves a cell input) per edge; inputs are nodes 0..inputs-1."""
    return [
        (f"{j}→{i + space.inputs}", j < space.inputs)
        for i in range(space.nodes)
        for j in range(space.inputs + i)
    ]


def conv_edge_matrix(space: SearchSpace, genotypes: list[Genotype]) -> np.ndarray:
    """(n, edges): the share of a genotype's cells holding a convolution on each edge (0/1 if shared)."""
    convs = {op for op in space.ops if "conv" in op}
    return np.array(
        [
            np.mean(
                [[bool(edge & convs) for edge in g.edges(c)] for c in range(len(g.cells))], axis=0
            )
            for g in genotypes
        ],
        dtype=float,
    ).reshape(len(genotypes), space.num_edges)


def find_benchmark_dir(config: dict[str, Any]) -> Path | None:
    """The NB201 robustness dataset folder: named in the config, else under $ROBNAS_DATA."""
    candidates: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and any(
                    w in key for w in ("benchmark", "tabular", "data")
                ):
                    candidates.append(value)
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    if os.environ.get("ROBNAS_DATA"):
        candidates.append(os.environ["ROBNAS_DATA"])
    for text in candidates:
        path = Path(text).expanduser()
        for folder in (path, path / "nb201-robustness"):
            if (folder / "meta.json").is_file():
                return folder
    return None


@dataclass(frozen=True)
class AnalysisResult:
    out_dir: Path
    report: Path
    files: tuple[Path, ...]
    n: int
    robust_key: str
    headlines: tuple[str, ...]


def analyze(
    run_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    benchmark_dir: str | os.PathLike[str] | None = None,
) -> AnalysisResult:
    """Test the findings on a run; write report.md, PNGs and CSVs to `out_dir` (RUN/analysis)."""
    from robnas.analysis.report import build_report  # matplotlib is loaded only when analysing

    if n_boot < 100:
        raise ConfigError(f"--bootstrap {n_boot} is too few for 95% intervals; use at least 100")
    data = load_run(run_dir)
    bench = Path(benchmark_dir) if benchmark_dir is not None else find_benchmark_dir(data.config)
    report, files, headlines = build_report(data, n_boot=n_boot, seed=seed, benchmark_dir=bench)
    out = Path(out_dir) if out_dir is not None else data.run_dir / "analysis"
    written = []
    for name, payload in files.items():
        atomic_write_bytes(out / name, payload)
        written.append(out / name)
    atomic_write_bytes(out / "report.md", report.encode("utf-8"))
    log.info("analysis of %s written to %s", data.run_dir, out)
    return AnalysisResult(
        out_dir=out,
        report=out / "report.md",
        files=(*written, out / "report.md"),
        n=data.n,
        robust_key=data.robust_key,
        headlines=tuple(headlines),
    )
