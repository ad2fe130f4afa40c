"""Ground truth 2 on the darts space: one-shot (RobNet protocol) scores vs standalone PGD-20.

Chooses at least 12 darts cells by a seed (RobNet-large's cell, the sparsest feasible cell, the
densest cell, random cells of several densities, and pairs whose parameter counts differ by under
5%: the same edges shuffled to other places), then for each cell:

- trains it standalone at the tiny darts macro (C=8, 5 layers) with the tiny preset's recipe
  (peak LR 0.05 warmed up over 10% then cosine, the first 30% of steps clean, then FGSM-RS
  at 8/255; batch 32 rather than the preset's 128: 4x the updates per image, which this short
  budget needs: fast adversarial training, one attack step per batch instead of PGD-7) on
  `--cell-images` training images, and attacks it with PGD-20 (8/255, step 2/255) on
  `--test-images` CIFAR-10 TEST images (`standalone_pgd20`, `standalone_clean`);
- scores it by RobNet's protocol on a supernet of the same macro trained once with the same
  recipe: inherited weights, a short FGSM-RS finetune, BatchNorm recalibrated, PGD-20 on a
  held-out split of the TRAINING data the supernet never trained on (`supernet_score`;
  robnas.evaluators.supernet.SupernetEvaluator, robnas.checkpoint.unseen_images).

Resumable: the supernet's and each cell's checkpoints and per-cell JSONs live in `--run`
(git-ignored); rerunning the same command skips finished work. Every write is atomic; the CSV is
rewritten after every finished cell. One thread (set OMP_NUM_THREADS=1; run under nice).

    OMP_NUM_THREADS=1 nice -n 10 python experiments/oneshot_rank_darts.py

On two cores: `--shard 0/2` and `--shard 1/2 --standalone-only` side by side (the first trains the
supernet, then its half of the cells; the second trains and attacks the other half alone), then
the same command without either switch scores what is left and writes the table.

Writes experiments/results/oneshot_rank_darts/oneshot_rank_darts.csv and .md (taus, within-pair agreement).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import kendalltau

from robnas.attacks import PGD
from robnas.checkpoint import load_checkpoint, load_state, unseen_images
from robnas.config import TrainConfig, get_preset
from robnas.data.datasets import ImageData, load_dataset, split_train_val
from robnas.evaluators.base import Scoring, seeded_build
from robnas.evaluators.supernet import SupernetEvaluator
from robnas.genotype import Genotype
from robnas.io import atomic_write_text
from robnas.models import sizing
from robnas.models.published import get_published
from robnas.models.supernet import Supernet
from robnas.space.search_space import SearchSpace, get_space
from robnas.specs import DEFAULT_EPS, AttackSpec
from robnas.training.loop import train
from robnas.training.validate import robust_counts, validate

HERE = Path(__file__).resolve().parent
SEP, SKIP = "sep_conv_3x3", "skip_connect"
FIELDS = (
    "name",
    "pair",
    "genotype",
    "params",
    "conv_edges",
    "skip_edges",
    "density",
    "supernet_score",
    "supernet_clean",
    "supernet_score_2class",
    "supernet_clean_2class",
    "standalone_pgd20",
    "standalone_clean",
    "test_images",
    "train_seconds",
    "eval_seconds",
    "score_seconds",
)


# -- choosing the cells ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Cell:
    name: str
    genotype: Genotype
    pair: str  # "" for cells outside the <5% pairs


def _cell(space: SearchSpace, edges: list[frozenset[str]]) -> Genotype:
    return Genotype(space.name, (space.cell_from_edges(edges),))


def random_cell(space: SearchSpace, rng: np.random.Generator, p: float) -> Genotype:
    """Each (edge, op) active with probability p: p sets the expected density."""
    edges = [frozenset(op for op in space.ops if rng.random() < p) for _ in range(space.num_edges)]
    return _cell(space, edges)


def shuffled_partner(
    space: SearchSpace, g: Genotype, macro: dict[str, Any], rng: np.random.Generator
) -> Genotype:
    """The same op sets on other edges (another isomorphism class), parameters within 5%."""
    n = sizing.num_params(space, g, macro)
    for _ in range(10_000):
        edges = g.edges()
        order = rng.permutation(len(edges))
        h = _cell(space, [edges[i] for i in order])
        close = abs(sizing.num_params(space, h, macro) - n) / n < 0.05
        if close and space.canonical(h) != space.canonical(g):
            return h
    raise RuntimeError(f"no partner within 5% parameters for {g}")


def choose_cells(space: SearchSpace, macro: dict[str, Any], seed: int, count: int) -> list[Cell]:
    """The cells in work order: the <5% pairs first (RobNet-large's and three random densities),
    then the densest, the sparsest, and random singles of other densities."""
    rng = np.random.default_rng(seed)
    robnet = get_published("robnet_large").genotype
    bases = [("robnet_large", robnet)] + [
        (f"rand_p{int(p * 100)}", random_cell(space, rng, p)) for p in (0.25, 0.5, 0.75)
    ]
    cells: list[Cell] = []
    for k, (name, g) in enumerate(bases):
        cells.append(Cell(name, g, f"P{k + 1}"))
        cells.append(Cell(f"{name}_shuffled", shuffled_partner(space, g, macro, rng), f"P{k + 1}"))
    cells.append(Cell("densest", _cell(space, [frozenset(space.ops)] * space.num_edges), ""))
    # sparsest feasible: one op per node (4 of 28 edge-op pairs), a chain input 1 -> n0 -> .. -> n3
    sparse = []
    for node in range(space.nodes):
        sparse += [
            frozenset({SEP}) if j == node else frozenset() for j in range(space.inputs + node)
        ]
    cells.append(Cell("sparsest", _cell(space, sparse), ""))
    for p in (0.35, 0.6, 0.15, 0.9, 0.45, 0.7):
        cells.append(Cell(f"rand_p{int(p * 100)}", random_cell(space, rng, p), ""))
    seen: set[str] = set()
    unique = []
    for c in cells:  # a random single never repeats an isomorph of an earlier cell
        form = space.canonical(c.genotype)
        if form not in seen:
            seen.add(form)
            unique.append(c)
    return unique[:count]


# -- the work --------------------------------------------------------------------------------


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(data, indent=1) + "\n")


@dataclasses.dataclass
class Setup:
    space: SearchSpace
    macro: dict[str, Any]
    train_cfg: TrainConfig
    supernet_cfg: TrainConfig
    finetune_cfg: TrainConfig
    pool: ImageData  # training images (supernet, cells, finetune)
    held: ImageData  # held out of the training split: validation and supernet scoring
    test: ImageData
    run: Path


def make_setup(args: argparse.Namespace) -> Setup:
    space = get_space("darts")
    macro = space.resolve_macro("tiny", C=args.C, layers=args.layers)
    # the tiny preset's recipe; the peak LR is --peak-lr at whatever --batch-size (lr_batch = batch)
    base = dataclasses.replace(
        get_preset("tiny").train,
        batch_size=args.batch_size,
        lr=args.peak_lr,
        lr_batch=args.batch_size,
        seed=args.seed,
        attack_train_mode=False,  # as the committed run trained (the preset later switched)
        recal_batches=2,  # likewise, whatever the preset says later
        sampler="uniform_op",  # likewise (the preset moved to dense_start)
        augment=True,  # likewise (the preset dropped augmentation)
    )
    # standalone cells: one pass over --cell-images, a cheap end-of-training check only
    train_cfg = dataclasses.replace(base, val_size=64, val_steps=1)
    supernet_cfg = dataclasses.replace(base, val_size=args.val_images, val_steps=10, val_paths=2)
    # RobNet's finetune is adversarial from the first step, no warm-up
    finetune_cfg = dataclasses.replace(
        base, epochs=1, warmup_epochs=0.0, clean_epochs=0.0, recal_batches=4
    )
    need = max(args.supernet_images, args.cell_images, args.finetune_images)
    data = load_dataset(
        "cifar10", "train", data_dir=args.data, limit=need + args.held_images, seed=args.seed
    )
    pool, held = split_train_val(data, args.held_images, args.seed)
    test = load_dataset(
        "cifar10", "test", data_dir=args.data, limit=args.test_images, seed=args.seed
    )
    # a seeded shuffle: the folder loads class by class, and a round of test images must not be
    # half the classes (the union over all rounds is the same class-balanced set)
    test = test.take(torch.randperm(len(test), generator=torch.Generator().manual_seed(args.seed)))
    return Setup(space, macro, train_cfg, supernet_cfg, finetune_cfg, pool, held, test, args.run)


def train_supernet(s: Setup, images: int, log: Callable[[str], None]) -> Supernet:
    out = s.run / "supernet"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(s.supernet_cfg.seed)
        supernet = Supernet(s.space, s.macro)
    began = time.perf_counter()
    data = s.pool.subset(images, s.supernet_cfg.seed)
    val = s.held.subset(min(s.supernet_cfg.val_size, len(s.held)), s.supernet_cfg.seed)
    info = read_json(out / "info.json")
    if info is not None:  # finished: load it (robnas' own resume refuses changed defaults)
        load_state(supernet, load_checkpoint(out / "last.pt")["model"], str(out / "last.pt"))
        log(f"supernet: {info}")
        return supernet
    result = train(supernet, data, val, s.supernet_cfg, out, resume=True)
    if info is None:
        info = {"seconds": time.perf_counter() - began, "images": len(data), **result.final}
        write_json(out / "info.json", info)
    log(f"supernet: {info}")
    return supernet


def supernet_validation(s: Setup, supernet: Supernet, images: int, paths: int) -> dict[str, Any]:
    """The trained supernet's clean and PGD-10 accuracy over `paths` random paths on the held-out
    validation images, BN recalibrated per path on shuffled training batches (the training
    loop's own end-of-epoch numbers recalibrated on class-ordered batches before robnas 87244d3)."""
    path = s.run / "supernet" / "validation.json"
    done = read_json(path)
    if done is None:
        cfg = dataclasses.replace(s.supernet_cfg, val_paths=paths)
        data = s.pool.subset(images, s.supernet_cfg.seed)
        val = s.held.subset(min(cfg.val_size, len(s.held)), cfg.seed)
        done = {**validate(supernet, data, val, cfg), "paths": paths, "images": len(val)}
        write_json(path, done)
    return done


def standalone(
    s: Setup, cell: Cell, images: int, steps: int, chunk: int, size: int
) -> dict[str, Any]:
    """Train the cell (once) and attack test images [chunk*size, (chunk+1)*size) (once each)."""
    folder = s.run / "cells" / cell.genotype.key
    done = read_json(folder / "standalone.json") or {"chunks": {}}
    if str(chunk) in done["chunks"]:
        return done
    model = seeded_build(s.space, cell.genotype, s.macro, "cifar10", s.train_cfg.seed)
    data = s.pool.subset(images, s.train_cfg.seed + 1)
    began = time.perf_counter()
    train(model, data, s.held.subset(min(64, len(s.held)), 0), s.train_cfg, folder, resume=True)
    done.setdefault("train_seconds", time.perf_counter() - began)  # resumed: the first time
    began = time.perf_counter()
    attack = PGD(8 / 255, alpha=2 / 255, steps=steps, seed=s.train_cfg.seed + chunk)
    part = s.test.take(torch.arange(chunk * size, min((chunk + 1) * size, len(s.test))))
    counts = robust_counts(model, part, attack, batch_size=250)
    done["chunks"][str(chunk)] = [float(c) for c in counts]
    total = np.sum(list(done["chunks"].values()), axis=0)
    done.update(
        standalone_pgd20=total[1] / total[2],
        standalone_clean=total[0] / total[2],
        test_images=int(total[2]),
        eval_seconds=done.get("eval_seconds", 0.0) + time.perf_counter() - began,
        train_images=len(data),
    )
    write_json(folder / "standalone.json", done)
    return done


def supernet_score(
    s: Setup, cell: Cell, evaluator: SupernetEvaluator, score_images: int
) -> dict[str, Any]:
    folder = s.run / "cells" / cell.genotype.key
    done = read_json(folder / "supernet.json")
    if done is not None and done.get("split") == "balanced":
        return done
    if done is not None:  # scored before the split was class-balanced: kept for the record
        os.replace(folder / "supernet.json", folder / "supernet_classbiased.json")
    result = evaluator.evaluate(cell.genotype)
    key = evaluator.scorer.robust_key
    done = {
        "supernet_score": result.metrics[key],
        "supernet_clean": result.metrics["clean_acc"],
        "score_seconds": result.seconds,
        "score_images": score_images,
        "split": "balanced",
    }
    write_json(folder / "supernet.json", done)
    return done


def make_evaluator(s: Setup, supernet: Supernet, args: argparse.Namespace) -> SupernetEvaluator:
    ckpt = load_checkpoint(s.run / "supernet" / "last.pt")
    unseen = unseen_images(ckpt, s.held, "the supernet", dataset="cifar10", need=args.score_images)
    # class-balanced (the held-out split is in class order: its last images are one class)
    score = unseen.subset(args.score_images, args.seed)
    finetune_data = s.pool.subset(args.finetune_images, s.train_cfg.seed + 2)
    return SupernetEvaluator(
        supernet,
        s.space,
        finetune_data,
        score,
        finetune_cfg=s.finetune_cfg,
        scoring=Scoring(
            attack=AttackSpec("pgd", DEFAULT_EPS, args.pgd_steps),
            batch_size=min(250, args.score_images),
        ),
        seed=args.seed,
    )


def row(s: Setup, cell: Cell) -> dict[str, Any] | None:
    folder = s.run / "cells" / cell.genotype.key
    a, b = read_json(folder / "standalone.json"), read_json(folder / "supernet.json")
    old = read_json(folder / "supernet_classbiased.json")
    if b is not None and b.get("split") != "balanced":
        old, b = b, None
    if a is None or (b is None and old is None):
        return None
    # the first scoring of this run used the last 300 held-out images: 100 ships, 200 trucks
    two = {} if old is None else {"supernet_score_2class": old["supernet_score"]}
    two |= {} if old is None else {"supernet_clean_2class": old["supernet_clean"]}
    empty = {"supernet_score": "", "supernet_clean": "", "score_seconds": ""}
    edges = cell.genotype.edges()
    return {
        "supernet_score_2class": "",
        "supernet_clean_2class": "",
        **(empty if b is None else {}),
        **two,
        "name": cell.name,
        "pair": cell.pair,
        "genotype": cell.genotype.to_str(),
        "params": sizing.num_params(s.space, cell.genotype, s.macro),
        "conv_edges": sum(SEP in e for e in edges),
        "skip_edges": sum(SKIP in e for e in edges),
        "density": round(s.space.density(cell.genotype), 4),
        **{k: v for k, v in {**a, **(b or {})}.items() if k in FIELDS},
    }


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    def fmt(v: Any) -> str:
        return f"{v:.6g}" if isinstance(v, float) else str(v)

    lines = [",".join(FIELDS)] + [",".join(fmt(r[f]) for f in FIELDS) for r in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")


def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """The whole measurement; returns the finished rows (also written to `<results>.csv`)."""
    if not (args.run / "started.json").exists():
        write_json(args.run / "started.json", {"time": time.time()})
    s = make_setup(args)
    cells = choose_cells(s.space, s.macro, args.seed, args.cells)
    write_json(
        s.run / "cells.json",
        {"seed": args.seed, "cells": [[c.name, c.pair, c.genotype.to_str()] for c in cells]},
    )
    evaluator = None
    if not args.standalone_only:
        supernet = train_supernet(s, args.supernet_images, log)
        evaluator = make_evaluator(s, supernet, args)
    mine = [c for i, c in enumerate(cells) if i % args.shard[1] == args.shard[0]]
    rows: list[dict[str, Any]] = []
    chunks = -(-len(s.test) // args.test_chunk)
    # every cell gets its first chunk of test images and its supernet score before any cell
    # gets more test images, so a run cut short still ranks every finished cell
    for chunk in range(chunks):
        for i, cell in enumerate(mine):
            a = standalone(s, cell, args.cell_images, args.pgd_steps, chunk, args.test_chunk)
            b = {} if evaluator is None else supernet_score(s, cell, evaluator, args.score_images)
            a = {k: v for k, v in a.items() if k != "chunks"}
            log(f"[chunk {chunk} {i + 1}/{len(mine)}] {cell.name} {cell.pair} {a} {b}")
            if args.shard == (0, 1):  # a shard leaves the table to the unsharded run
                rows = [r for r in (row(s, c) for c in cells) if r is not None]
                write_csv(args.results.with_suffix(".csv"), rows)
    if evaluator is not None:
        log(f"supernet validation: {supernet_validation(s, supernet, args.supernet_images, 4)}")
    return rows


# -- the summary -----------------------------------------------------------------------------


def tau(x: list[float], y: list[float]) -> float:
    return float(kendalltau(x, y).statistic)


SCORES = ("supernet_score", "supernet_clean", "supernet_score_2class", "params")
TWO_CLASS_CAVEAT = [
    "- supernet_score_2class: this run first scored every cell on the last 300 held-out "
    "images, which the class-ordered split made 100 ships and 200 trucks; supernet_score is "
    "the class-balanced rescoring (300 held-out images, 30 per class), '-' where it had not "
    "finished by the deadline (rerun the same command to complete it). The sparsest cell "
    "scores 0 there: uniform op sampling never trains paths that sparse.",
]


def null_sd(n: int) -> float:
    """SD of Kendall's tau over n items under no association."""
    return float(np.sqrt(2 * (2 * n + 5) / (9 * n * (n - 1)))) if n >= 2 else float("nan")


def summarise(rows: list[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """Taus against the ground truth, their bootstrap and null SDs, and within-pair agreement."""
    n = len(rows)
    truths = ("standalone_pgd20", "standalone_clean")
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"n": n, "null_sd": null_sd(n)}
    for t in truths:
        for sc in SCORES:
            have = [r for r in rows if r.get(sc, "") != ""]  # a score may cover fewer cells
            x_all = np.array([float(r[sc]) for r in have])
            y_all = np.array([float(r[t]) for r in have])
            boot = []
            for _ in range(2000):
                idx = rng.integers(len(have), size=len(have))
                x, y = x_all[idx], y_all[idx]
                if len(set(x)) > 1 and len(set(y)) > 1:
                    boot.append(tau(list(x), list(y)))
            value = tau(list(x_all), list(y_all)) if len(have) >= 2 else float("nan")
            out[f"{sc}~{t}"] = (value, float(np.std(boot)) if boot else float("nan"), len(have))
    pairs: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["pair"]:
            pairs.setdefault(r["pair"], []).append(r)

    def agrees(score: str, a: dict[str, Any], b: dict[str, Any], t: str) -> float:
        """1 if the score orders the pair as the truth does, 0.5 if it ties (a coin), else 0."""
        s = np.sign(float(a[score]) - float(b[score]))
        truth = np.sign(float(a[t]) - float(b[t]))
        return 0.5 if s == 0 or truth == 0 else float(s == truth)

    agree: dict[str, dict[str, list[float]]] = {t: {} for t in truths}
    for members in pairs.values():
        if len(members) == 2:
            a, b = members
            for t in truths:
                for sc in SCORES:
                    if a.get(sc, "") != "" and b.get(sc, "") != "":
                        agree[t].setdefault(sc, []).append(agrees(sc, a, b, t))
    out["pairs"] = agree
    return out


def machine() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        model = next(
            (ln.split(":", 1)[1].strip() for ln in text.splitlines() if "Model name" in ln), ""
        )
    except OSError:
        model = ""
    return f"{model or platform.processor()}, {os.cpu_count()} cores"


def wall_seconds(run: Path) -> float:
    """From the first invocation's start to the last finished cell (across resumed invocations)."""
    started = read_json(run / "started.json")
    ends = [p.stat().st_mtime for p in run.glob("cells/*/supernet.json")]
    return max(ends) - started["time"] if started and ends else float("nan")


def read_rows(path: Path) -> list[dict[str, Any]]:
    with path.open() as f:
        return list(csv.DictReader(f))


def binomial_se(p: float, n: float) -> float:
    return float(np.sqrt(max(p * (1 - p), 1e-12) / max(n, 1.0)))


def pair_table(rows: list[dict[str, Any]], score_images: int) -> list[str]:
    """Each pair's differences (first minus second) with the sampling SE of each difference."""
    pairs: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r["pair"]:
            pairs.setdefault(r["pair"], []).append(r)
    lines = [
        "| pair | params diff | d standalone_pgd20 (SE) | d supernet_score (SE) |",
        "|---|---|---|---|",
    ]
    for p, members in sorted(pairs.items()):
        if len(members) != 2:
            continue
        a, b = members
        pa, pb = float(a["standalone_pgd20"]), float(b["standalone_pgd20"])
        na, nb = float(a["test_images"]), float(b["test_images"])
        se_t = np.hypot(binomial_se(pa, na), binomial_se(pb, nb))
        diff = (float(a["params"]) - float(b["params"])) / max(float(a["params"]), 1.0)
        scored = ""
        if a["supernet_score"] != "" and b["supernet_score"] != "":
            sa, sb = float(a["supernet_score"]), float(b["supernet_score"])
            se_s = np.hypot(binomial_se(sa, score_images), binomial_se(sb, score_images))
            scored = f"{sa - sb:+.3f} ({se_s:.3f})"
        lines.append(
            f"| {p} ({a['name']} - {b['name']}) | {100 * diff:+.1f}% | {pa - pb:+.3f} "
            f"({se_t:.3f}) | {scored or 'not yet'} |"
        )
    return lines


def shown_scores(rows: list[dict[str, Any]]) -> list[str]:
    """The scores some row has (supernet_score_2class exists only in the first darts run)."""
    return [sc for sc in SCORES if any(r.get(sc, "") != "" for r in rows)]


def caveats(
    rows: list[dict[str, Any]], res: dict[str, Any], sn: dict[str, Any], args: argparse.Namespace
) -> list[str]:
    pgd = [float(r["standalone_pgd20"]) for r in rows]
    clean = [float(r["standalone_clean"]) for r in rows]
    n_test = min(float(r["test_images"]) for r in rows)
    se = binomial_se(float(np.mean(pgd)), n_test)
    nan = float("nan")
    return [
        "Caveats (read before citing a tau):",
        f"- {res['n']} cells: under no association tau has SD {res['null_sd']:.2f}, and the "
        "bootstrap SDs above are of the same size; only a tau well above ~0.4 says anything, "
        "and a difference between two taus here is not a finding.",
        f"- The ground truth is short training: one pass over {args.cell_images} images "
        f"({args.cell_images // args.batch_size} steps). Standalone clean accuracy spans "
        f"{min(clean):.3f}-{max(clean):.3f}, PGD-20 {min(pgd):.3f}-{max(pgd):.3f}; the SE of "
        f"one cell's PGD-20 accuracy on {n_test:.0f} test images is about {se:.3f}, so "
        "neighbouring cells are often within noise of each other. It ranks how fast a cell "
        "learns robustness early, which need not be its rank after full (RobNet: 170 epochs "
        "PGD-7) training.",
        f"- The supernet is weak: PGD-10 validation {sn.get('robust_acc', nan):.3f} / clean "
        f"{sn.get('clean_acc', nan):.3f} ({sn.get('paths')} random paths, BN recalibrated) after "
        f"{args.supernet_images} images; the score therefore measures the short finetune from "
        "inherited weights as much as the shared weights themselves."
        + (
            ""
            if "images" in sn
            else " (This validation recalibrated BN on class-ordered batches, robnas before "
            "87244d3: an underestimate; the finetuned paths' clean accuracy in supernet_clean "
            "and supernet_clean_2class is the better guide.)"
        ),
        "- FGSM-RS (fast adversarial training, one random-start step of 10/255) stands in for "
        f"PGD-7 training in both the cells and the supernet, at batch {args.batch_size}.",
        "- Across all cells the parameter count is nearly the number of sep_conv edges (density); "
        "only the pairs hold it fixed.",
    ] + (TWO_CLASS_CAVEAT if "supernet_score_2class" in shown_scores(rows) else [])


def write_summary(args: argparse.Namespace, rows: list[dict[str, Any]]) -> str:
    res = summarise(rows, args.seed)
    shown = shown_scores(rows)
    two_class = "supernet_score_2class" in shown
    wall = wall_seconds(args.run)
    compute = sum(
        float(r[k] or 0) for r in rows for k in ("train_seconds", "eval_seconds", "score_seconds")
    )
    sn = read_json(args.run / "supernet" / "info.json") or {}
    sn["paths"] = 2
    sn.update(read_json(args.run / "supernet" / "validation.json") or {})
    lines = [
        "# Ground truth 2 (darts space): one-shot scores vs standalone FGSM-RS-trained cells",
        "",
        f"Command: `OMP_NUM_THREADS=1 python experiments/oneshot_rank_darts.py {' '.join(args.argv)}`",
        f"Machine: {machine()}; 1 thread per process (torch.set_num_threads(1)){args.note}. "
        f"Wall time {wall / 60:.1f} min from the first start to the last "
        f"finished cell; compute: supernet {sn.get('seconds', float('nan')) / 60:.1f} min, cells "
        f"(train + test attack + supernet scoring) {compute / 60:.1f} min (per-cell seconds in the CSV).",
        "",
        f"{res['n']} cells, macro C={args.C}, {args.layers} layers (tiny). Standalone: "
        f"{args.cell_images} training images, one pass, batch {args.batch_size}, peak LR {args.peak_lr} "
        "(10% warm-up, cosine), first 30% of steps clean, then FGSM-RS 8/255 (fast adversarial "
        f"training, not PGD-7); PGD-{args.pgd_steps} (8/255, step 2/255) on the first "
        f"`test_images` of {args.test_images} class-balanced CIFAR-10 test images (attacked in "
        f"rounds of {args.test_chunk} over all cells). Supernet: same recipe on {args.supernet_images} training images "
        f"({sn.get('seconds', float('nan')) / 60:.1f} min; PGD-10 validation over {sn['paths']} random paths "
        f"on {args.val_images} held-out images: clean {sn.get('clean_acc', float('nan')):.3f}, "
        f"robust {sn.get('robust_acc', float('nan')):.3f}); each cell inherits its weights, is "
        f"finetuned one FGSM-RS pass over {args.finetune_images} training images, BN recalibrated "
        f"(4 batches), then PGD-{args.pgd_steps} on {args.score_images} held-out training images "
        "the supernet never trained on (`supernet_score`).",
        "",
        "| score | tau vs standalone_pgd20 (bootstrap SD) | tau vs standalone_clean (bootstrap SD) |",
        "|---|---|---|",
    ]
    for sc in shown:
        cells = [res[f"{sc}~{t}"] for t in ("standalone_pgd20", "standalone_clean")]
        n_sc = cells[0][2]
        lines.append(
            f"| {sc} (n={n_sc}, null SD {null_sd(n_sc):.2f}) | "
            + " | ".join(f"{v:.3f} ({sd:.3f})" for v, sd, _ in cells)
            + " |"
        )
    lines += [
        "",
        f"Null SD of tau for n={res['n']} (no association): {res['null_sd']:.3f}, i.e. a tau must "
        f"exceed about {2 * res['null_sd']:.2f} to differ from 0 at ~95%.",
        "",
        "Within the <5%-parameter pairs (same op sets on other edges): does the score order the "
        "pair as the ground truth does? (1 per pair; a tie of either side counts 0.5.)",
        "",
        "| target | " + " | ".join(f"{sc} agrees" for sc in shown) + " |",
        "|---" * (len(shown) + 1) + "|",
    ]
    for t, by_score in res["pairs"].items():
        cells = [by_score.get(sc, []) for sc in shown]
        lines.append(f"| {t} | " + " | ".join(f"{sum(c):g}/{len(c)}" for c in cells) + " |")
    lines += ["", *pair_table(rows, args.score_images), "", *caveats(rows, res, sn, args)]
    lines += [
        "",
        "| name | pair | params | conv edges | supernet_score | supernet_clean | "
        + ("supernet_score_2class | " if two_class else "")
        + "pgd20 | clean | test images |",
        "|---|---|---|---|---|---|---|---|---|" + ("---|" if two_class else ""),
    ]

    def f3(v: Any) -> str:
        return f"{float(v):.3f}" if v != "" else "-"

    for r in rows:
        lines.append(
            f"| {r['name']} | {r['pair']} | {r['params']} | {r['conv_edges']} | "
            f"{f3(r['supernet_score'])} | {f3(r['supernet_clean'])} | "
            + (f"{f3(r['supernet_score_2class'])} | " if two_class else "")
            + f"{float(r['standalone_pgd20']):.3f} | {float(r['standalone_clean']):.3f} | "
            f"{r['test_images']} |"
        )
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.results.with_suffix(".md"), text)
    return text


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    data = os.environ.get("ROBNAS_DATA")
    parser.add_argument(
        "--data",
        type=Path,
        default=data,
        required=not data,
        help="data folder (default: $ROBNAS_DATA)",
    )
    parser.add_argument("--cells", type=int, default=12)
    parser.add_argument("--C", type=int, default=8)
    parser.add_argument("--layers", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cell-images", type=int, default=4096)
    parser.add_argument("--supernet-images", type=int, default=16384)
    parser.add_argument("--finetune-images", type=int, default=512)
    parser.add_argument("--held-images", type=int, default=2000)
    parser.add_argument("--val-images", type=int, default=200)
    parser.add_argument("--score-images", type=int, default=300)
    parser.add_argument("--peak-lr", type=float, default=0.05)
    parser.add_argument("--test-images", type=int, default=1000)
    parser.add_argument(
        "--test-chunk", type=int, default=500, help="test images attacked per cell per round"
    )
    parser.add_argument("--pgd-steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run", type=Path, default=HERE / "runs" / "oneshot_rank_darts")
    parser.add_argument(
        "--results",
        type=Path,
        default=HERE / "results" / "oneshot_rank_darts" / "oneshot_rank_darts",
    )
    parser.add_argument(
        "--summary-only", action="store_true", help="rewrite the .md from the CSV rows so far"
    )
    parser.add_argument(
        "--shard",
        default="0/1",
        help="K/N: work only on cells i with i %% N == K, and write no table (two cores: run "
        "0/2 and 1/2 --standalone-only side by side, then the command without either)",
    )
    parser.add_argument(
        "--note", default="", help="how the machine was shared, for the summary's Machine line"
    )
    parser.add_argument(
        "--standalone-only",
        action="store_true",
        help="train and attack the cells alone; no supernet (another process trains it)",
    )
    args = parser.parse_args(argv)
    args.note = f"; {args.note}" if args.note else ""
    try:
        k, n = (int(v) for v in args.shard.split("/"))
    except ValueError:
        parser.error(f"--shard takes K/N, e.g. 0/2; got {args.shard!r}")
    if not 0 <= k < n:
        parser.error(f"--shard K/N needs 0 <= K < N; got {args.shard!r}")
    args.shard = (k, n)
    # the run's settings, without the switches that only split or summarise the work
    args.argv, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--shard", "--note"):
            skip = True
        elif a not in ("--summary-only", "--standalone-only") and not a.startswith(
            ("--shard=", "--note=")
        ):
            args.argv.append(a)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if args.summary_only:  # the rows finished so far (e.g. while the run continues)
        rows = read_rows(args.results.with_suffix(".csv"))
    else:
        rows = run(args, log=lambda m: print(m, file=sys.stderr, flush=True))
    if len(rows) >= 2:
        print(write_summary(args, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
