#!/bin/sh
# robnas rank's default score through the user-facing commands: a 32-epoch clean NB201 supernet
# (the recipe of oneshot_rank_nb201_long) trained by `robnas supernet train`, then `robnas rank`
# with its defaults on 500 classes (seed 0: the cells of oneshot_rank_nb201_long) and 5,000
# held-out images; then experiments/results/rank_cli_nb201/rank_cli_nb201.{md,csv}. About 1.5 h on 2 cores.
# Resumable: rerun it (both commands resume; the results are rewritten, notes below the marker kept).
#     sh experiments/rank_cli_nb201.sh          (from the repository root)
set -e
: "${ROBNAS_DATA:?set ROBNAS_DATA to the data folder (CIFAR-10 and nb201-robustness)}"
export ROBNAS_DATA
W=${W:-experiments/runs/cli_rank}
mkdir -p "$W"
[ -f "$W/start" ] || date +%s > "$W/start"
if [ -f "$W/sn/last.pt" ]; then R=--resume; else R=; fi
# batch, augmentation and sampler pinned to the tiny preset the committed runs used
robnas supernet train --space nb201 --C 8 --N 1 --preset tiny --method clean --epochs 32 \
        --batch-size 128 --augment --sampler uniform_op \
    --warmup-epochs 3.2 --lr 0.05 --weight-decay 5e-4 --train-size 44000 --val-size 6000 \
    --seed 0 --no-progress --out "$W/sn" $R
[ -f "$W/trained" ] || date +%s > "$W/trained"
robnas rank "$W/sn/last.pt" --benchmark "$ROBNAS_DATA/nb201-robustness" --archs 500 \
    --images 5000 --no-progress --out "$W/rank"
[ -f "$W/end" ] || date +%s > "$W/end"
W="$W" python - <<'PY'
import os, platform, subprocess
from pathlib import Path

import pandas as pd

from robnas.io import atomic_write_text

w, out = Path(os.environ["W"]), Path("experiments/results/rank_cli_nb201/rank_cli_nb201")
stamp = {k: int((w / k).read_text()) for k in ("start", "trained", "end")}
log = pd.read_csv(w / "sn" / "log.csv")
cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
model = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if "Model name" in ln), "?")
marker = "<!-- notes: text below this line is kept when the script rewrites the file -->"
md = out.with_suffix(".md")
kept = md.read_text().split(marker, 1)[1] if md.exists() and marker in md.read_text() else "\n"
script = Path("experiments/rank_cli_nb201.sh").read_text()
commands = [ln for ln in script.split("set -e", 1)[1].split("W=\"$W\" python", 1)[0].splitlines()]
text = [
    "# robnas rank's default score, through the user's commands",
    "",
    "Commands (`sh experiments/rank_cli_nb201.sh`):",
    "",
    "```sh", *[c for c in commands if c.strip()], "```",
    "",
    f"Machine: {model} ({platform.machine()}), {os.cpu_count()} cores. Wall time: training "
    f"{(stamp['trained'] - stamp['start']) / 60:.1f} min (epochs {log['seconds'].sum() / 60:.1f} "
    f"min), ranking {(stamp['end'] - stamp['trained']) / 60:.1f} min. The supernet's last "
    f"validation: {log['clean_acc'].iloc[-1]:.1%} clean on 500 held-out images, two paths.",
    "",
    (w / "rank" / "ranking.md").read_text(),
    marker,
]
atomic_write_text(md, "\n".join(text) + kept)
cols = ["arch", "params", "flops", "supernet_clean", "supernet_fgsm", "naswot", "score",
        "clean", "fgsm@1", "pgd@1"]
table = pd.read_csv(w / "rank" / "cells.csv")[cols]
atomic_write_text(out.with_suffix(".csv"), table.to_csv(index=False))
print(f"wrote {md} and {out.with_suffix('.csv')}")
PY
