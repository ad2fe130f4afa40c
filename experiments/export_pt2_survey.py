"""Does every network robnas builds export to pt2 (torch.export) with the same logits?

Exports a sample of cells of each built-in space (darts and nb201 at a small size, wrn as
sampled), the baselines and the published networks through `robnas.export.formats.render`, which
loads each `.pt2` back and refuses it unless its logits match PyTorch's within 1e-4 on a batch of
another size; records the largest difference on a further batch and the seconds it took.
Resumable: rows already in the CSV are skipped.

    OMP_NUM_THREADS=1 nice -n 10 python experiments/export_pt2_survey.py [--cells 12] [--wrn 6]
        [--seed 1] [--no-named]

Writes experiments/results/export_pt2_survey/export_pt2_survey.{csv,md}.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from robnas.errors import RobnasError
from robnas.export.formats import render
from robnas.export.traced import example_images, exported_load
from robnas.io import atomic_write_text
from robnas.models.resolve import baseline_names, published_names, resolve_arch
from robnas.space.search_space import get_space

HERE = Path(__file__).resolve().parent
SMALL = {"darts": {"C": 4, "layers": 3}, "nb201": {"C": 4, "N": 1}, "wrn": {}}
FIELDS = ["kind", "arch", "num_params", "status", "max_abs_diff", "seconds"]


def archs(cells: int, wrn: int, seed: int, named: bool = True) -> list[tuple[str, str, dict]]:
    """(kind, arch string, macro) for every network the survey exports, in order."""
    rng = np.random.default_rng(seed)
    out = []
    for name, n in (("darts", cells), ("nb201", cells), ("wrn", wrn)):
        space = get_space(name)
        out += [(name, space.sample(rng).to_str(), SMALL[name]) for _ in range(n)]
    if named:
        out += [("baseline", n, {}) for n in baseline_names()]
        out += [("published", n, {}) for n in published_names()]
    return out


def survey_one(arch: str, macro: dict) -> dict[str, object]:
    spec = resolve_arch(arch, **macro)
    torch.manual_seed(0)
    model = spec.build().eval()
    began = time.perf_counter()
    try:
        data = render(spec, ["pt2"], model=model)["pt2"]
    except RobnasError as err:
        status, diff = f"refused: {err}", float("nan")
    else:
        probe = example_images(spec, 4, seed=7)
        with torch.no_grad():
            diff = float((exported_load(io.BytesIO(data))(probe) - model(probe)).abs().max())
        status = "ok"
    return {
        "num_params": sum(p.numel() for p in model.parameters()),
        "status": status,
        "max_abs_diff": f"{diff:.3g}",
        "seconds": f"{time.perf_counter() - began:.1f}",
    }


def report(rows: list[dict[str, str]], command: str) -> str:
    ok = sum(r["status"] == "ok" for r in rows)
    lines = [
        "# Every network robnas builds, exported to pt2 (torch.export)",
        "",
        f"Command: `{command}`",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s); seconds are wall time on a shared machine.",
        "",
        f"{ok} of {len(rows)} exported, each verified by `render` (logits within 1e-4 of "
        "PyTorch's on a batch of another size); `max_abs_diff`: the largest logit difference on a "
        "further batch of 4 images.",
        "",
        "| kind | arch | params | status | max abs diff | seconds |",
        "|---|---|---:|---|---:|---:|",
    ]
    for r in rows:
        arch = r["arch"] if len(r["arch"]) <= 60 else r["arch"][:57] + "..."
        arch = arch.replace("|", "\\|")  # a genotype's bars would split the table's cells
        lines.append(
            f"| {r['kind']} | `{arch}` | {int(r['num_params']):,} | {r['status']} | "
            f"{r['max_abs_diff']} | {r['seconds']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=12, help="darts and nb201 cells each")
    parser.add_argument("--wrn", type=int, default=6, help="wrn networks")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--named",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also the baselines and published networks, at full size (default: on)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=HERE / "results" / "export_pt2_survey" / "export_pt2_survey",
        help="writes OUT.csv and OUT.md",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    csv_path = args.out.parent / f"{args.out.name}.csv"
    rows: list[dict[str, str]] = []
    if csv_path.exists():
        with csv_path.open() as handle:
            rows = list(csv.DictReader(handle))
    done = {r["arch"] for r in rows}
    given = " ".join(sys.argv[1:] if argv is None else argv)
    command = f"OMP_NUM_THREADS=1 python experiments/export_pt2_survey.py {given}".strip()
    for kind, arch, macro in archs(args.cells, args.wrn, args.seed, args.named):
        if arch in done:
            continue
        rows.append(
            {"kind": kind, "arch": arch, **{k: str(v) for k, v in survey_one(arch, macro).items()}}
        )
        body = io.StringIO()
        writer = csv.DictWriter(body, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(csv_path, body.getvalue())
        atomic_write_text(args.out.parent / f"{args.out.name}.md", report(rows, command))
        print(f"{rows[-1]['status']:>4} {rows[-1]['seconds']:>6}s {arch[:70]}", flush=True)
    if done:  # a rerun: the report again from the rows (the first command is the one recorded)
        md = args.out.parent / f"{args.out.name}.md"
        first = md.read_text().splitlines()[2] if md.exists() else ""
        recorded = first.removeprefix("Command: `").removesuffix("`") or command
        atomic_write_text(md, report(rows, recorded))
    return 0 if all(r["status"] == "ok" for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
