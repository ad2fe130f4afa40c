"""`robnas rank` as a library: score NB201 isomorph classes with a trained supernet and hold the
scores against the robustness dataset, beside counting parameters and the indicators.

The per-cell table is written row by row (atomically), so an interrupted run resumes where it
stopped; the agreement tables are recomputed from the whole table at the end.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from robnas import models
from robnas.checkpoint import image_fingerprints, load_state, read_checkpoint, unseen_images
from robnas.data.datasets import ImageData
from robnas.data.tabular import TabularBenchmark
from robnas.errors import CheckpointError, ConfigError
from robnas.evaluators.base import seeded_build
from robnas.genotype import Genotype
from robnas.indicators import INDICATORS, count_flops
from robnas.io import atomic_write_text
from robnas.models.supernet import Supernet
from robnas.objectives.scores import DEFAULT_SCORE, NASWOT_SCORES, SCORES
from robnas.ranking.metrics import tau_gain
from robnas.ranking.oneshot import CellScore, score_cells
from robnas.ranking.report import (
    TRUTHS,
    agreement_table,
    combined_score,
    draw_classes,
    markdown,
    params_then_mean_rank,
    signed_indicator,
    split_agreement,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RankSettings:
    archs: int = 500
    recal_batches: int = 4
    batch_size: int = 256
    fgsm_eps: float = 1 / 255
    indicators: tuple[str, ...] = ("naswot",)
    # where the indicators are computed: "inherited" (the supernet's weights, the cell extracted)
    # or "init" (each cell built from one seeded initialisation at `indicator_macro`; None = the
    # space's deployed size, its `paper` preset), on `indicator_images` held-out images balanced
    # over the classes
    indicators_at: str = "init"
    indicator_macro: dict[str, Any] | None = None
    indicator_images: int = 128
    score: str = DEFAULT_SCORE
    seed: int = 0

    def __post_init__(self) -> None:
        if self.score not in SCORES:
            raise ConfigError(f"unknown score {self.score!r}; choose one of {', '.join(SCORES)}")
        if self.indicators_at not in ("init", "inherited"):
            raise ConfigError(f"indicators_at is {self.indicators_at!r}; use init or inherited")
        if self.score in NASWOT_SCORES and (
            "naswot" not in self.indicators or self.indicators_at != "init"
        ):
            # NASWOT on inherited weights ranks worse (0.274 within against clean, README)
            raise ConfigError(
                f"score {self.score} needs NASWOT computed at initialisation "
                "(indicators including naswot, at init); or choose score params+supernet"
            )


def _row(score: CellScore, space: Any, macro: dict[str, Any], dataset: str) -> dict[str, Any]:
    with torch.device("meta"):
        net = models.build(space, score.genotype, macro, dataset)
    kept, nan = score.clean_logp is not None, float("nan")
    return {
        "arch": score.genotype.to_str().partition(":")[2],
        "params": sum(p.numel() for p in net.parameters()),
        "flops": count_flops(net, (1, 3, 32, 32)),
        "supernet_clean": score.accuracy("clean"),
        "supernet_fgsm": score.accuracy("fgsm") if score.fgsm is not None else nan,
        "supernet_logp": score.mean_logp() if kept else nan,
        # interleaved halves: held-out splits come class by class, so first/second halves
        # would hold different classes (cells then trade them off: a negative test-retest)
        "clean_half_a": score.accuracy("clean", slice(0, None, 2)),
        "clean_half_b": score.accuracy("clean", slice(1, None, 2)),
        "logp_half_a": score.mean_logp(slice(0, None, 2)) if kept else nan,
        "logp_half_b": score.mean_logp(slice(1, None, 2)) if kept else nan,
    }


def rank_supernet(
    supernet: Supernet,
    bench: TabularBenchmark,
    *,
    recal: ImageData,
    heldout: ImageData,
    out_dir: str | Path,
    settings: RankSettings = RankSettings(),
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
    archs: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Score `settings.archs` classes drawn uniformly; write cells.csv, ranking.md, ranking.json.
    `archs` (NB201 strings) scores exactly those cells instead, e.g. a fixed subset of an earlier
    draw, so two supernets are compared on the same cells."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if archs is None:
        archs = draw_classes(bench.rows, bench.strings, settings.archs, settings.seed)
    archs = list(archs)
    cells_path = out / "cells.csv"
    done: dict[str, dict[str, Any]] = {}
    if cells_path.exists():
        done = {r["arch"]: r for r in pd.read_csv(cells_path).to_dict("records")}
    _same_indicators(out / "indicators.json", supernet, settings, resuming=bool(done))
    todo = [Genotype.from_str(f"{supernet.space.name}:{a}") for a in archs if a not in done]

    def write(score: CellScore) -> None:
        row = _row(score, supernet.space, supernet.macro, supernet.dataset)
        for name in settings.indicators:
            row[name] = _indicator(supernet, score.genotype, name, heldout, settings)
        done[row["arch"]] = row
        rows = [done[a] for a in archs if a in done]
        atomic_write_text(cells_path, pd.DataFrame(rows).to_csv(index=False))
        if progress is not None:
            progress(len(rows), len(archs))

    score_cells(
        supernet,
        todo,
        recal=recal,
        heldout=heldout,
        recal_batches=settings.recal_batches,
        batch_size=settings.batch_size,
        fgsm_eps=settings.fgsm_eps or None,
        device=device,
        on_cell=write,
    )
    table = pd.DataFrame([done[a] for a in archs])
    return summarize(table, bench, supernet.space.name, out, settings)


def _same_indicators(
    path: Path, supernet: Supernet, settings: RankSettings, *, resuming: bool
) -> None:
    """A resumed ranking keeps its indicator settings: rows already written were computed with
    them, and a new indicator would be missing from those rows."""

    these = {
        "indicators": list(settings.indicators),
        "at": settings.indicators_at,
        # the size actually built at (None in the settings resolves to the deployed size)
        "macro": indicator_macro(supernet, settings) if settings.indicators_at == "init" else None,
        "images": settings.indicator_images,
        "seed": settings.seed,
    }
    if resuming and path.exists():
        before = json.loads(path.read_text())
        if before != these:
            raise ConfigError(
                f"{path.parent} was ranked with indicator settings {before}; these are {these}: "
                "rerun with the same ones, or use a new --out"
            )
    atomic_write_text(path, json.dumps(these))


def _indicator(
    supernet: Supernet, g: Genotype, name: str, data: ImageData, settings: RankSettings
) -> float:

    if settings.indicators_at == "init":
        macro = indicator_macro(supernet, settings)
        model = seeded_build(supernet.space, g, macro, supernet.dataset, settings.seed).eval()
    else:
        model = supernet.extract(g).eval()
    # balanced over the classes: held-out splits are class-ordered, so the first k images would
    # be one or two classes
    k = settings.indicator_images
    batch = data if len(data) <= k else data.subset(k, settings.seed)
    return INDICATORS.get(name)(model, batch.floats(), batch.labels, cfg={"seed": settings.seed})[
        name
    ]


def indicator_macro(supernet: Supernet, settings: RankSettings) -> dict[str, Any]:
    """The size cells are built at for indicators at initialisation: the given one, else the
    deployed network's (the space's `paper` size), else the supernet's."""
    if settings.indicator_macro is not None:
        return settings.indicator_macro
    paper = supernet.space.sizes.get("paper")
    if paper is None:
        return dict(supernet.macro)
    return supernet.space.resolve_macro(**{**supernet.macro, **paper})


def summarize(
    table: pd.DataFrame,
    bench: TabularBenchmark,
    space: str,
    out: Path,
    settings: RankSettings,
    truths: Sequence[str] = TRUTHS,
) -> dict[str, Any]:
    """Add ground truth and the combined score; write the agreement tables."""
    table = table.copy()
    gs = [Genotype.from_str(f"{space}:{a}") for a in table["arch"]]
    for t in truths:
        table[t] = [bench.value(g, t) for g in gs]
    scores = ["score", "supernet_clean", "supernet_fgsm", "params", "flops"]
    # cells scored before log-probabilities were kept lack them: then no logp score at all
    has_logp = "supernet_logp" in table and bool(table["supernet_logp"].notna().all())
    if has_logp:
        scores.insert(3, "supernet_logp")
    params = table["params"].to_numpy()
    for name in settings.indicators:
        # signed so higher predicts more robust; then the combined ranker: params across
        # sizes, the indicator's rank within equal params (as `score` does with the supernet)
        signed, table[signed] = signed_indicator(table, name)
        table[f"params+{signed}"] = params_then_mean_rank(params, table[signed])
        # and beside the supernet: within equal params the mean of the two ranks
        table[f"params+(supernet,{signed})"] = params_then_mean_rank(
            params, table["supernet_clean"], table[signed]
        )
        scores += [signed, f"params+{signed}", f"params+(supernet,{signed})"]
    if settings.score == "params+supernet":
        table["score"] = combined_score(params, table["supernet_clean"].to_numpy())
    else:  # a NASWOT score: its column was made with the indicators above
        table["score"] = table[settings.score]
    agree = agreement_table(table, scores, truths)
    retest = split_agreement(
        table["clean_half_a"].to_numpy(),
        table["clean_half_b"].to_numpy(),
        table["params"].to_numpy(),
    )
    retest_logp = None
    if has_logp:
        retest_logp = split_agreement(
            table["logp_half_a"].to_numpy(),
            table["logp_half_b"].to_numpy(),
            table["params"].to_numpy(),
        )
    # does the supernet add anything to counting parameters? The tau difference, paired
    gain = {t: tau_gain(table["score"], table["params"], table[t]) for t in truths}
    atomic_write_text(out / "cells.csv", table.to_csv(index=False))
    definition = f"`score` = {settings.score}: {SCORES[settings.score]}."
    atomic_write_text(
        out / "ranking.md", definition + "\n\n" + markdown(agree, retest, retest_logp, gain)
    )
    summary = {
        "cells": len(table),
        "score": {"name": settings.score, "definition": SCORES[settings.score]},
        "agreement": agree.to_dict("records"),
        "score_gain_over_params": {
            t: dict(zip(("gain", "low", "high"), g)) for t, g in gain.items()
        },
        "test_retest": retest,
        "test_retest_logp": retest_logp,
        "settings": settings.__dict__,
    }
    atomic_write_text(out / "ranking.json", json.dumps(summary, indent=2, default=str))
    return summary


def scores_by(summary: dict[str, Any], score: str, truth: str) -> dict[str, float]:
    for row in summary["agreement"]:
        if row["score"] == score and row["truth"] == truth:
            return {k: v for k, v in row.items() if isinstance(v, float)}
    raise KeyError((score, truth))


def load_supernet(path: str | Path) -> tuple[Supernet, dict[str, Any]]:
    """A trained supernet from its checkpoint (space, macro and dataset as recorded)."""

    ckpt = read_checkpoint(path, complete=True)
    if ckpt.get("kind") != "supernet" or not ckpt.get("space"):
        raise CheckpointError(
            f"{path} holds {ckpt.get('arch')!r}, not a supernet; pass a checkpoint of "
            "robnas supernet train (or a search run's supernet.pt)"
        )
    supernet = Supernet(ckpt["space"], ckpt.get("macro") or {}, ckpt.get("dataset") or "cifar10")
    load_state(supernet, ckpt["model"], str(path))
    return supernet, ckpt


def ranking_images(
    ckpt: dict[str, Any],
    data: ImageData,
    source: str,
    *,
    images: int,
    recal_images: int,
    seed: int,
) -> tuple[ImageData, ImageData]:
    """(recalibration images, held-out scoring images): the scoring images are ones the supernet
    never trained on (refused otherwise); BatchNorm statistics come from its training images."""

    dataset = str(ckpt.get("dataset") or "cifar10")
    unseen = unseen_images(ckpt, data, source, dataset=dataset, need=images)
    heldout = unseen.subset(images, seed)
    seen = torch.isin(image_fingerprints(data.images), ckpt["split"]["train_images"])
    trained = data.take(seen.nonzero().squeeze(1))
    recal = trained.subset(min(recal_images, len(trained)), seed)
    return recal, heldout
