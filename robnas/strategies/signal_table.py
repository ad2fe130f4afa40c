"""Cheap signals read from committed per-cell tables, charged what computing them cost.

A tabular study (100 runs x 100 queries per strategy) would recompute the same zero-cost
indicator of the same cell in many runs. `TableSignals` looks the values up in CSVs written by
`experiments/indicators_nb201.py` (`arch`, one column per indicator, `seconds`: the CPU seconds
that row's network and indicators took) instead. The lookup is free; the accounting is not: the
predictor charges each looked-up cell the table's recorded `seconds` (`recorded_seconds`), so a
run reports the compute it would have spent, as if it had computed the signals itself.

Cells are matched by isomorphism class (`space.canonical`): the table holds one representative
of each class, and a search computing the indicator itself would do the same on any member.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from robnas.errors import ConfigError
from robnas.genotype import Genotype
from robnas.space.search_space import SearchSpace


class TableSignals:
    """`signals(genotype) -> {column: value}` for the predictor's `signals=` option, from one or
    more per-cell CSVs joined on the class of their `arch` column (`columns`: default every
    column but `arch`, `params` and `seconds`). A cell missing from a table raises."""

    def __init__(
        self, space: SearchSpace, paths: Sequence[str | Path], columns: Sequence[str] | None = None
    ) -> None:
        if not paths:
            raise ConfigError("TableSignals needs at least one CSV of per-cell signals")
        self.space = space
        self.values: dict[str, dict[str, float]] = {}
        self.seconds: dict[str, float] = {}
        names: list[str] = []
        for path in paths:
            table_names, rows = self._read(Path(path), columns)
            if not table_names:  # none of its signals taken: nor its cost
                continue
            names += table_names
            for key, (values, seconds) in rows.items():
                self.values.setdefault(key, {}).update(values)
                self.seconds[key] = self.seconds.get(key, 0.0) + seconds
        self.names = tuple(names)
        if columns is not None and sorted(self.names) != sorted(columns):
            missing = sorted(set(columns) - set(self.names))
            raise ConfigError(f"no table of {[str(p) for p in paths]} has {', '.join(missing)}")
        if len(set(self.names)) != len(self.names):
            raise ConfigError(f"two tables give the same signal: {sorted(self.names)}")

    def _read(
        self, path: Path, columns: Sequence[str] | None
    ) -> tuple[list[str], dict[str, tuple[dict[str, float], float]]]:
        if not path.is_file():
            raise ConfigError(f"no signal table at {path}: write it with indicators_nb201.py")
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            fields = list(reader.fieldnames or [])
            if "arch" not in fields or "seconds" not in fields:
                raise ConfigError(f"{path} needs `arch` and `seconds` columns; it has {fields}")
            names = [
                f
                for f in fields
                if f not in ("arch", "params", "seconds") and (columns is None or f in columns)
            ]
            rows = {}
            for row in reader:
                key = self._key(Genotype.from_str(self._prefixed(row["arch"])))
                if not row["seconds"]:
                    raise ConfigError(f"{path}: the row of {row['arch']} has no `seconds`")
                if key in rows:
                    raise ConfigError(f"{path} holds the class of {row['arch']} twice")
                values = {n: float(row[n]) for n in names}
                rows[key] = (values, float(row["seconds"]))
        return names, rows

    def _prefixed(self, arch: str) -> str:
        return arch if arch.startswith(f"{self.space.name}:") else f"{self.space.name}:{arch}"

    def _key(self, genotype: Genotype) -> str:
        return str(self.space.canonical(genotype))

    def _row(self, genotype: Genotype) -> str:
        key = self._key(genotype)
        if key not in self.values or len(self.values[key]) != len(self.names):
            raise ConfigError(
                f"the signal tables have no full row for {genotype.to_str()}: "
                "compute every cell of the space (indicators_nb201.py --archs 6466)"
            )
        return key

    def __call__(self, genotype: Genotype) -> dict[str, float]:
        return dict(self.values[self._row(genotype)])

    def recorded_seconds(self, genotype: Genotype) -> float:
        """CPU seconds computing this cell's signals took when the tables were made."""
        return self.seconds[self._row(genotype)]


__all__ = ["TableSignals"]
