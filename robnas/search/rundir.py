"""`RunDir`: the one owner of a search run directory's files; readers for analysis and export.

    config.json   the run's settings (`to_json()` of the mode's settings type, "mode" says
                  which); a run dir holding another configuration is refused (keys in
                  RESUMABLE_KEYS may differ)
    trials.csv    one row per finished evaluation, written only by `write_trials`
    summary.json  one shape for every mode (below), written only by `write_summary`
    topk/         NN_<key>.json per top-k entry (the genotype's dict plus the entry)
    study.db      the Optuna storage of a study (search/study.py owns it)

`write_outputs` is the one writer of a search's results (trials.csv, summary.json, topk/) from
its finished trials (`TrialRecord`s), whatever the mode and whether one study or many repeats
produced them.

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
    mode              "supernet" | "macro" | "tabular"
    settings          the settings dict (= config.json)
    objective         {"key": str, "direction": "maximize" | "minimize"}
    trials            finished evaluations (all repeats together)
    failed            evaluations with status failed
    queries           distinct evaluations charged (tabular), else equal to trials
    budget            {"limit": int | null, "final_macro": {...}, "rejected": int,
                       "rejected_distinct": int, "flops_limit": int | null}: proposals the
                      budget refused
    best              Entry | null
    top_k             [Entry], best first (tabular repeats: the distinct returned architectures)
    pareto            [Entry] | null (multi-objective strategies)
    repeats           null, or per repeat {"repeat", "genotype", "metrics", ...} (tabular may add
                      "queried": the genotypes evaluated, in order)
    aggregate         null, or over repeats {"mean": {...}, "std": {...}, "optimum": float,
                       "found_optimum": fraction}
    final             null, or the winner trained at the final size {"genotype", "test_images",
                       "clean_acc", "pgd20_acc", ...}
    cheap_evaluations cheap scores a prescreen computed (0 without one); not queries

    Entry = {"trial", "genotype", "metrics", "num_params" (final size), "proxy_num_params",
             "flops"}
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from robnas.errors import ConfigError
from robnas.genotype import Genotype
from robnas.io import atomic_write_text, read_json_object
from robnas.result import Result
from robnas.search.settings import SearchSettings, normalized, settings_from_dict

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
    "cheap_evaluations",
)


@dataclass(frozen=True)
class TrialRecord:
    """One finished evaluation: a study's trial, or a query of one of many repeats."""

    number: int
    genotype: str
    result: Result
    flops: int | None
    num_params: int | None = None  # at the final size (None: unknown, the result's count)
    proxy_num_params: int | None = None  # at the size it was scored at, when that differs
    repeat: int | None = None  # which of many independent searches (None: one study)

    @property
    def status(self) -> str:
        return self.result.status


def trial_row(record: TrialRecord) -> dict[str, Any]:
    """One trials.csv row (RunDir.write_trials): `num_params` at the final size (default the
    result's), the proxy size's count when the candidate was scored on a smaller network."""
    result = record.result
    row: dict[str, Any] = {} if record.repeat is None else {"repeat": record.repeat}
    row.update(
        trial=record.number,
        genotype=record.genotype,
        status=result.status,
        num_params=result.num_params if record.num_params is None else record.num_params,
        proxy_num_params=record.proxy_num_params,
        flops=record.flops,
        seconds=round(result.seconds, 3),
    )
    row.update({k: float(v) for k, v in result.metrics.items() if k != "flops"})
    return row


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
    cheap_evaluations: int = 0,
    objective: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A summary.json of the one shape (see the module docstring). `objective` (key,
    direction) when the settings do not name it (a study used on its own)."""
    s = _as_dict(settings)
    key, direction = objective or (s.get("objective"), s.get("direction", "maximize"))
    return {
        "format": SUMMARY_FORMAT,
        "version": SUMMARY_VERSION,
        "mode": s.get("mode"),
        "settings": s,
        "objective": {"key": key, "direction": direction},
        "trials": int(trials),
        "failed": int(failed),
        "queries": int(trials if queries is None else queries),
        "budget": {
            "limit": s.get("budget"),
            "final_macro": s.get("final_macro"),
            "rejected": 0,
            "rejected_distinct": 0,
            "flops_limit": s.get("flops_budget"),
            **(budget or {}),
        },
        "best": best,
        "top_k": list(top_k),
        "pareto": None if pareto is None else list(pareto),
        "repeats": None if repeats is None else list(repeats),
        "aggregate": None if aggregate is None else dict(aggregate),
        "final": None if final is None else dict(final),
        "cheap_evaluations": int(cheap_evaluations),
    }


Sizer = Callable[[Genotype], int]


def write_outputs(
    run_dir: str | Path,
    settings: SearchSettings | Mapping[str, Any],
    records: Sequence[TrialRecord],
    *,
    score: Callable[[Result], float],
    multi_objective: bool = False,
    top_k: int = 5,
    final_params: Sizer | None = None,
    proxy_params: Sizer | None = None,
    flops: Sizer | None = None,
    top: Sequence[dict[str, Any]] | None = None,
    **summary: Any,
) -> dict[str, Any]:
    """trials.csv, summary.json and topk/ of a search's finished trials: the one writer.

    `score` ranks results (higher is better; -inf never ranks); the top `top_k` make `top_k`
    and `best`, and a multi-objective search gets its parameter Pareto front. Entries take the
    records' sizes, or the sizers' where a record has none. Repeats pass their own `top` (the
    distinct returned architectures). `summary`: the other fields of `make_summary` (`budget`,
    `repeats`, `aggregate`, `final`, `cheap_evaluations`, `objective`)."""

    def sized(r: TrialRecord) -> dict[str, Any]:
        g = Genotype.from_str(r.genotype)
        n = r.num_params
        if n is None:
            n = final_params(g) if final_params is not None else r.result.num_params
        proxy = r.proxy_num_params
        if proxy is None and proxy_params is not None:
            proxy = proxy_params(g)
        f = r.flops if r.flops is not None else (flops(g) if flops is not None else None)
        return entry(
            genotype=r.genotype,
            metrics=r.result.metrics,
            num_params=n,
            proxy_num_params=proxy,
            flops=f,
            trial=r.number,
        )

    pareto = None
    if top is None:
        ranked = sorted(
            (r for r in records if math.isfinite(score(r.result))),
            key=lambda r: score(r.result),
            reverse=True,
        )
        top = [sized(r) for r in ranked[:top_k]]
        if multi_objective:  # best objective first: keep those smaller than every better one
            pareto, smallest = [], math.inf
            for e in map(sized, ranked):
                if e["num_params"] < smallest:
                    pareto.append(e)
                    smallest = e["num_params"]
    summary = make_summary(
        settings,
        trials=len(records),
        failed=sum(not r.result.ok for r in records),
        best=top[0] if top else None,
        top_k=top,
        pareto=pareto,
        **summary,
    )
    run = RunDir(run_dir)
    run.write_trials(trial_row(r) for r in records)
    run.write_summary(summary)
    return summary


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
        """The run's settings (of its mode); ConfigError if the directory holds no search."""
        data = self.read_config()
        if data is None:
            raise ConfigError(f"{self.path} holds no robnas search (no config.json)")
        return settings_from_dict(data)

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
        # a config.json written before a setting existed holds that setting's default, one
        # written before the settings were split by mode the other modes' fields (not a
        # search config at all: compared as written, and refused below)
        stored = normalized(stored)
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
    "TrialRecord",
    "entry",
    "make_summary",
    "trial_row",
    "write_outputs",
]
