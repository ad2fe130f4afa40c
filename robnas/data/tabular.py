"""Tabular NB201 evaluation: look genotypes up in the NAS-Bench-201 robustness dataset.

The dataset (Jung, Lukasik & Keuper, ICLR 2023) holds, for every NB201 cell, the accuracy of the
trained network under attacks and corruptions. Layout (see the data README):

    <root>/meta.json                     {"ids": {"<nb201 index>": {"nb201-string", "isomorph"}},
                                          "epsilons": {"<attack>@Linf": [eps in 1/255, ...]}}
    <root>/<dataset>/<key>_accuracy.json {"<dataset>": {"<key>": {"accuracy": {"<isomorph>": v}}}}

Objective keys: `clean`, `<attack>@<eps>` with eps in 1/255 (`fgsm@1`, `pgd@8`, `aa_apgd-ce@1`,
`aa_square@0.5`) and `<corruption>@<severity>` (`fog@3`). Parsing the JSON takes seconds, so the
parsed arrays are cached as one .npz per benchmark folder in $ROBNAS_CACHE.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robnas.data.files import cache_dir
from robnas.errors import DataError, InvalidGenotype, UnknownName
from robnas.genotype import Genotype
from robnas.io import read_json
from robnas.space.cell import CellSpace
from robnas.space.search_space import SearchSpace
from robnas.specs import Objective

log = logging.getLogger(__name__)

#: The metrics every tabular result reports (the robustness paper's NAS table, eps = 1/255).
REPORT_KEYS = ("clean", "fgsm@1", "pgd@1", "aa_apgd-ce@1", "aa_square@1")
NB201_OPS = frozenset({"skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"})
_CACHE_VERSION = 1


def _eps_label(value: float) -> str:
    return f"{value:g}"


def normalize_key(key: str) -> str:
    """`fgsm@1.0`, `fgsm@1/255` and `FGSM@1` all read as `fgsm@1` (`Objective.parse`)."""
    return Objective.parse(key).key


@dataclass(frozen=True)
class TabularBenchmark:
    """The parsed dataset: NB201 index -> result row (isomorphs share a row) -> metric columns."""

    root: Path
    dataset: str
    strings: tuple[str, ...]
    rows: np.ndarray  # int32 [num NB201 indices]: the row of each index's isomorph
    columns: tuple[str, ...]
    table: np.ndarray  # float64 [num unique, num columns]; NaN where the dataset has no value
    _index: dict[str, int] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._index.update({s: i for i, s in enumerate(self.strings)})

    def column(self, key: str) -> int:
        norm = normalize_key(key)
        try:
            return self.columns.index(norm)
        except ValueError:
            attacks = sorted({c.split("@")[0] for c in self.columns if "@" in c})
            raise UnknownName(
                f"unknown objective {key!r} for {self.root}/{self.dataset}; use clean or <name>@<level> "
                f"with name one of {', '.join(attacks)} (e.g. fgsm@1, pgd@8, aa_square@1)"
            ) from None

    def index_of(self, genotype: Genotype) -> int:
        """The NB201 index of a shared NB201 cell."""
        if not genotype.shared:
            raise InvalidGenotype("the tabular benchmark covers shared NB201 cells (one cell) only")
        text = genotype.to_str().partition(":")[2]
        try:
            return self._index[text]
        except KeyError:
            raise InvalidGenotype(f"{text} is not an NB201 cell of the benchmark") from None

    def row_of(self, genotype: Genotype) -> int:
        return int(self.rows[self.index_of(genotype)])

    def value(self, genotype: Genotype, key: str) -> float:
        return float(self.table[self.row_of(genotype), self.column(key)])

    def metrics(self, genotype: Genotype, keys: tuple[str, ...]) -> dict[str, float]:
        row = self.table[self.row_of(genotype)]
        return {normalize_key(k): float(row[self.column(k)]) for k in keys}

    @property
    def num_unique(self) -> int:
        return int(self.table.shape[0])

    @functools.cached_property
    def genotypes(self) -> tuple[Genotype, ...]:
        """Every cell of the benchmark, by NB201 index (parsed once)."""
        return tuple(Genotype.from_str(s, "nb201") for s in self.strings)

    def optimum(
        self, key: str, feasible: Callable[[Genotype], bool] | None = None
    ) -> tuple[float, str]:
        """The best value of `key` over the cells `feasible` accepts (all: None), and one such
        cell (the lowest NB201 index): the optimum a search under that budget can reach."""
        values = self.table[self.rows, self.column(key)]
        allowed = ~np.isnan(values)
        if feasible is not None:
            allowed &= np.array([feasible(g) for g in self.genotypes])
        if not allowed.any():
            raise InvalidGenotype(f"no cell of the benchmark is within the budget for {key}")
        best = float(values[allowed].max())
        index = int(np.flatnonzero(allowed & (values == best))[0])
        return best, f"nb201:{self.strings[index]}"


def _read_json(path: Path) -> Any:
    return read_json(path, hint="re-download the benchmark", error=DataError)


def _fingerprint(files: list[Path], dataset: str) -> str:
    digest = hashlib.sha1(f"v{_CACHE_VERSION}:{dataset}".encode())
    for f in sorted(files):
        stat = f.stat()
        digest.update(f"{f.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _parse(root: Path, dataset: str, files: list[Path]) -> dict[str, np.ndarray]:
    meta = _read_json(root / "meta.json")
    try:
        ids = meta["ids"]
        epsilons: dict[str, list[float]] = meta.get("epsilons", {})
        order = sorted(ids, key=int)
        strings = [ids[i]["nb201-string"] for i in order]
        isomorphs = [str(ids[i]["isomorph"]) for i in order]
    except (KeyError, TypeError) as err:
        raise DataError(
            f"{root}/meta.json lacks {err}; it needs 'ids' with nb201-string/isomorph"
        ) from None
    if [int(i) for i in order] != list(range(len(order))):
        raise DataError(f"{root}/meta.json: ids must be 0..n-1")
    unique = sorted(set(isomorphs), key=int)
    row_of = {u: r for r, u in enumerate(unique)}
    columns: list[str] = []
    values: list[np.ndarray] = []
    for path in sorted(files):
        key = path.name.removesuffix("_accuracy.json")
        data = _read_json(path)
        try:
            acc = data[dataset][key]["accuracy"]
        except (KeyError, TypeError):
            raise DataError(
                f"{path} lacks {dataset}/{key}/accuracy; re-download the benchmark"
            ) from None
        first = next(iter(acc.values()))
        levels: list[str]
        if not isinstance(first, list):
            levels = [""]
        elif key in epsilons:
            levels = [_eps_label(e) for e in epsilons[key]]
        else:  # corruptions: severities 1..n
            levels = [str(s + 1) for s in range(len(first))]
        block = np.full((len(unique), len(levels)), np.nan, dtype=np.float64)
        for iso, v in acc.items():
            if iso in row_of:
                block[row_of[iso]] = v if isinstance(v, list) else [v]
        name = key.split("@")[0]
        columns.extend(name if lv == "" else f"{name}@{lv}" for lv in levels)
        values.append(block)
    if "clean" not in columns:
        raise DataError(f"{root}/{dataset} has no clean_accuracy.json; re-download the benchmark")
    return {
        "strings": np.array(strings),
        "rows": np.array([row_of[i] for i in isomorphs], dtype=np.int32),
        "columns": np.array(columns),
        "table": np.concatenate(values, axis=1),
    }


@functools.lru_cache(maxsize=4)
def _load(root: Path, dataset: str, fingerprint: str, files: tuple[Path, ...]) -> TabularBenchmark:
    cache = cache_dir() / f"nb201-robustness-{dataset}-{fingerprint}.npz"
    arrays: dict[str, np.ndarray]
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    else:
        start = time.perf_counter()
        arrays = _parse(root, dataset, list(files))
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{time.time_ns()}.tmp.npz")
        np.savez(tmp, **arrays)  # type: ignore[arg-type]
        tmp.replace(cache)
        log.info(
            "parsed %s/%s in %.1fs, cached at %s", root, dataset, time.perf_counter() - start, cache
        )
    return TabularBenchmark(
        root=root,
        dataset=dataset,
        strings=tuple(str(s) for s in arrays["strings"]),
        rows=arrays["rows"],
        columns=tuple(str(c) for c in arrays["columns"]),
        table=arrays["table"],
    )


def load_benchmark(path: str | Path, dataset: str = "cifar10") -> TabularBenchmark:
    """The benchmark at `path` (the folder holding meta.json) for one dataset folder."""
    root = Path(path).expanduser().resolve()
    if not (root / "meta.json").is_file():
        raise DataError(
            f"no benchmark at {path}: expected meta.json there (the NB201 robustness dataset folder)"
        )
    folder = root / dataset
    files = sorted(folder.glob("*_accuracy.json")) if folder.is_dir() else []
    if not files:
        have = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise DataError(
            f"benchmark {root} has no accuracy files for dataset {dataset!r}; present: {', '.join(have) or 'none'}"
        )
    fingerprint = _fingerprint([root / "meta.json", *files], dataset)
    return _load(root, dataset, fingerprint, tuple(files))


def check_space(space: SearchSpace) -> None:
    if (
        not isinstance(space, CellSpace)
        or space.family != "nb201"
        or set(space.ops) != NB201_OPS
        or space.nodes != 3
    ):
        raise InvalidGenotype(
            f"the tabular benchmark needs the nb201 space (4 nodes, NB201 ops); got {space.name!r}"
        )
