"""`RunDir`: the one owner of a search run directory's files; readers for analysis and export.

    config.json   the run's SearchSettings (`SearchSettings.to_json()`); a run dir holding
                  another configuration is refused (keys in RESUMABLE_KEYS may differ)
    trials.csv    one row per finished evaluation, written only by `write_trials`
    summary.json  one shape for every mode (below), written only by `write_summary`
    topk/         NN_<key>.json per top-k entry (the genotype's dict plus the entry)
    study.db      the Optuna storage of a study (search/study.py owns it)

trials.csv columns: those of TRIAL_COLUMNS that any row has, in that order, then the
settings that define the measured metrics (`eps`, `attack_steps` of a supernet search, the
same on every row), then the metric columns in first-seen order. Empty cell = not measured.

    repeat            tabular repeats only: which independent search
    trial             trial number (a study) or query number within the repeat
    genotype          canonical genotype string
    status            ok | failed
    num_params        parameters at the final (deployed) size: what --budget binds
    proxy_num_params  parameters at the size the candidate was scored at (supernet proxy)
    flops             multiply-accumulates at the final size
    seconds           evaluation wall time

summary.json (every key always present; null where a mode has no such value):

    format, version   "robnas-summary", 1
    mode              "supernet" | "tabular"
    settings          the SearchSettings dict (= config.json)
    objective         {"key": str, "direction": "maximize" | "minimize"}
    trials            finished evaluations (all repeats together)
    failed            evaluations with status failed
    queries           distinct evaluations charged (tabular), else equal to trials
    budget            {"limit": int | null, "final_macro": {...}, "rejected": int,
                       "rejected_distinct": int}: proposals the budget refused
    best              Entry | null
    top_k             [Entry], best first (tabular repeats: the distinct returned architectures)
    pareto            [Entry] | null (multi-objective strategies)
    repeats           null, or per repeat {"repeat", "genotype", "metrics", ...} (tabular may add
                      "queried": the genotypes evaluated, in order)
    aggregate         null, or over repeats {"mean": {...}, "std": {...}, "optimum": float,
                       "found_optimum": fraction}
    final             null, or the winner trained at the final size {"genotype", "test_images",
                       "clean_acc", "pgd20_acc", ...}

    Entry = {"trial", "genotype", "metrics", "num_params" (final size), "proxy_num_params",
             "flops"}
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from robnas.errors import ConfigError
from robnas.io import atomic_write_text, read_json_object
from robnas.search.settings import SearchSettings

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

SUMMARY_FORMAT = "robnas-summary"
SUMMARY_VERSION = 1
TRIAL_COLUMNS = (
    "repeat",
    "trial",
    "genotype",
    "status",
    "num_params",
    "proxy_num_params",
    "flops",
    "seconds",
)
#: Settings written on every trials.csv row (they name what the metric columns measured).
TRIAL_SETTING_COLUMNS = ("eps", "attack_steps")
#: Settings that may change between a run and its resume (they do not change the search).
RESUMABLE_KEYS = frozenset({"trials", "storage", "resume", "progress", "workers", "top_k"})
SUMMARY_KEYS = (
    "format",
    "version",
    "mode",
    "settings",
    "objective",
    "trials",
    "failed",
    "queries",
    "budget",
    "best",
    "top_k",
    "pareto",
    "repeats",
    "aggregate",
    "final",
)


def entry(
    *,
    genotype: str,
    metrics: Mapping[str, float],
    num_params: int | None,
    proxy_num_params: int | None = None,
    flops: int | None = None,
    trial: int | None = None,
) -> dict[str, Any]:
    """One summary entry (best, top_k, pareto)."""
    return {
        "trial": trial,
        "genotype": genotype,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "num_params": num_params,
        "proxy_num_params": proxy_num_params,
        "flops": flops,
    }


def make_summary(
    settings: SearchSettings | Mapping[str, Any],
    *,
    trials: int,
    failed: int,
    best: dict[str, Any] | None,
    top_k: Sequence[dict[str, Any]],
    queries: int | None = None,
    budget: Mapping[str, Any] | None = None,
    pareto: Sequence[dict[str, Any]] | None = None,
    repeats: Sequence[dict[str, Any]] | None = None,
    aggregate: Mapping[str, Any] | None = None,
    final: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A summary.json of the one shape (see the module docstring)."""
    s = settings.to_dict() if isinstance(settings, SearchSettings) else dict(settings)
    return {
        "format": SUMMARY_FORMAT,
        "version": SUMMARY_VERSION,
        "mode": s.get("mode"),
        "settings": s,
        "objective": {"key": s.get("objective"), "direction": s.get("direction", "maximize")},
        "trials": int(trials),
        "failed": int(failed),
        "queries": int(trials if queries is None else queries),
        "budget": {
            "limit": s.get("budget"),
            "final_macro": s.get("final_macro"),
            "rejected": 0,
            "rejected_distinct": 0,
            **(budget or {}),
        },
        "best": best,
        "top_k": list(top_k),
        "pareto": None if pareto is None else list(pareto),
        "repeats": None if repeats is None else list(repeats),
        "aggregate": None if aggregate is None else dict(aggregate),
        "final": None if final is None else dict(final),
    }


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


class RunDir:
    """The files of one search run directory (nothing is written until a method says so)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.json")
    trials_path = property(lambda self: self.path / "trials.csv")
    summary_path = property(lambda self: self.path / "summary.json")
    topk_dir = property(lambda self: self.path / "topk")

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # -- config.json -------------------------------------------------------------------------

    def read_config(self) -> dict[str, Any] | None:
        """config.json as a dict (None when there is none); ConfigError if unreadable."""
        if not self.config_path.is_file():
            return None
        return read_json_object(self.config_path, hint="use a new --out directory")

    def read_settings(self) -> SearchSettings:
        """The run's SearchSettings; ConfigError if the directory holds no search."""
        data = self.read_config()
        if data is None:
            raise ConfigError(f"{self.path} holds no robnas search (no config.json)")
        return SearchSettings.from_dict(data)

    def check(self, settings: SearchSettings | Mapping[str, Any]) -> bool:
        """True if the directory holds these settings, False if it is new or empty;
        ConfigError if it holds another configuration or is not a robnas run."""
        stored = self.read_config()
        if stored is None:
            if self.path.exists() and any(self.path.iterdir()):
                raise ConfigError(
                    f"{self.path} exists and is not a robnas run (no config.json); use a new --out directory"
                )
            return False
        mine = _as_dict(settings)
        if isinstance(settings, SearchSettings):
            # a config.json written before a setting existed holds that setting's default
            # (not a SearchSettings at all: compared as written, and refused below)
            with contextlib.suppress(ConfigError, TypeError):
                stored = SearchSettings.from_dict(stored).to_dict()
        diffs = [
            f"{k}: {stored.get(k)!r} != {mine.get(k)!r}"
            for k in sorted(set(stored) | set(mine))
            if k not in RESUMABLE_KEYS and stored.get(k) != mine.get(k)
        ]
        if diffs:
            raise ConfigError(
                f"{self.path} belongs to a different configuration ({'; '.join(diffs[:3])}); "
                "use a new --out directory or the run's own settings"
            )
        return True

    def init(self, settings: SearchSettings | Mapping[str, Any]) -> bool:
        """Create the directory with config.json (or accept it if it holds these settings);
        True if it existed."""
        existed = self.check(settings)
        self.path.mkdir(parents=True, exist_ok=True)
        if not existed:
            text = json.dumps(_as_dict(settings), indent=2, sort_keys=True)
            atomic_write_text(self.config_path, text)
        return existed

    # -- trials.csv --------------------------------------------------------------------------

    def trial_settings(self) -> dict[str, Any]:
        """The TRIAL_SETTING_COLUMNS values this run's rows carry (supernet searches)."""
        config = self.read_config() or {}
        if config.get("mode") != "supernet":
            return {}
        return {k: config[k] for k in TRIAL_SETTING_COLUMNS if k in config}

    def write_trials(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Rewrite trials.csv atomically from row dicts (TRIAL_COLUMNS keys plus metrics)."""
        rows = list(rows)
        constants = self.trial_settings()
        lead = [c for c in TRIAL_COLUMNS if any(c in r for r in rows)]
        rest: list[str] = []
        for r in rows:
            rest.extend(k for k in r if k not in TRIAL_COLUMNS and k not in rest)
        columns = [*lead, *[c for c in constants if c not in rest], *rest]
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(columns)
        for r in rows:
            merged = {**constants, **r}
            writer.writerow([_cell(merged.get(c)) for c in columns])
        atomic_write_text(self.trials_path, buffer.getvalue())

    def read_trials(self) -> pd.DataFrame:
        """trials.csv as a DataFrame (genotype and status as text); ConfigError if missing."""
        import pandas as pd

        if not self.trials_path.is_file():
            raise ConfigError(f"{self.trials_path} not found; is {self.path} a robnas search run?")
        try:
            return pd.read_csv(self.trials_path, dtype={"genotype": str, "status": str, "eps": str})
        except pd.errors.EmptyDataError:
            raise ConfigError(
                f"{self.trials_path} is empty; let the search finish a trial"
            ) from None

    # -- summary.json and topk/ --------------------------------------------------------------

    def write_summary(self, summary: Mapping[str, Any], *, topk: bool = True) -> None:
        """Write summary.json (checked against the one shape) and topk/NN_<key>.json."""
        missing = [k for k in SUMMARY_KEYS if k not in summary]
        if missing:
            raise ValueError(f"summary lacks {', '.join(missing)}; build it with make_summary")
        if topk:
            from robnas.genotype import Genotype

            for i, item in enumerate(summary["top_k"], 1):
                g = Genotype.from_str(item["genotype"])
                payload = {**g.to_dict(), "genotype": item["genotype"], "rank": i, **item}
                atomic_write_text(
                    self.topk_dir / f"{i:02d}_{g.key}.json", json.dumps(payload, indent=2)
                )
        atomic_write_text(self.summary_path, json.dumps(dict(summary), indent=2))

    def read_summary(self) -> dict[str, Any]:
        """summary.json; ConfigError if missing or unreadable. Summaries written before the
        one shape are returned with the missing keys filled in (null)."""
        data = read_json_object(self.summary_path, hint="let the search finish first")
        return {**{k: None for k in SUMMARY_KEYS}, **data}


def _as_dict(settings: SearchSettings | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(settings, SearchSettings):
        return settings.to_dict()
    return dict(json.loads(json.dumps(dict(settings))))


__all__ = [
    "RESUMABLE_KEYS",
    "SUMMARY_KEYS",
    "TRIAL_COLUMNS",
    "RunDir",
    "entry",
    "make_summary",
]
