"""A supernet pass killed with SIGKILL after its first checkpoint inside the pass, resumed with
--resume, against the same pass uninterrupted: does the resumed run end with the same weights,
and how much work did the kill cost?

    OMP_NUM_THREADS=1 nice -n 10 python experiments/resume_inside_pass.py \
        --out experiments/results/resume_inside_pass -- --train-size 6000

Runs `robnas supernet train --space darts --preset tiny` (one pass, dense_start paths, FGSM-RS)
three times in folders under --out: `straight/`, then `killed/` (SIGKILL `--after` seconds after
its first checkpoint inside the pass appeared) and the same folder resumed. Writes
`results.json` (the wall times, the step the kill resumed at, the largest weight difference,
the log rows, the checkpoint's size and the time one write of it takes). Arguments after `--` go
to every run. A finished run folder is kept: rerunning skips it (delete a folder to redo it).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from robnas.checkpoint import read_checkpoint, save_checkpoint
from robnas.io import atomic_write_text

# The robnas CLI with torch's global generator seeded first. The CLI initialises the supernet's
# weights from that generator, which torch seeds differently in every process (torch 2.14): two
# plain runs of one command start from different weights, and so can never end alike. (The
# resumed run's start does not matter: it loads the checkpoint, global generator included.)
SEEDED_CLI = (
    "import sys, torch; torch.manual_seed(0); from robnas.cli import main; sys.exit(main())"
)


def command(out: Path, extra: list[str], resume: bool = False) -> list[str]:
    cmd = [sys.executable, "-c", SEEDED_CLI, "supernet", "train", "--space", "darts"]
    cmd += ["--preset", "tiny", "--out", str(out), "--no-progress", *extra]
    return cmd + (["--resume"] if resume else [])


def run(cmd: list[str], log: Path) -> float:
    began = time.monotonic()
    with log.open("a") as handle:
        subprocess.run(cmd, check=True, stdout=handle, stderr=subprocess.STDOUT)
    return time.monotonic() - began


def inside_step(last: Path) -> int | None:
    """The step of `last`'s checkpoint inside an epoch (None: none yet, or at an epoch end)."""
    if not last.is_file():
        return None
    try:
        saved = read_checkpoint(last)
    except Exception:  # noqa: BLE001 - a reader racing the writer sees the old file or none
        return None
    in_epoch = saved.get("in_epoch")
    return int(in_epoch["step"]) if in_epoch else None


def kill_after_first_checkpoint(cmd: list[str], log: Path, after: float) -> dict[str, float]:
    """Run `cmd`; SIGKILL it `after` s after its first checkpoint inside the pass."""
    last = Path(cmd[cmd.index("--out") + 1]) / "last.pt"
    began = time.monotonic()
    with log.open("a") as handle:
        proc = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT)
        while inside_step(last) is None:
            if proc.poll() is not None:
                raise SystemExit(f"the run ended before a checkpoint inside its pass; see {log}")
            time.sleep(1.0)
        first = time.monotonic() - began
        time.sleep(after)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return {"first_checkpoint_s": first, "killed_at_s": time.monotonic() - began}


def write_seconds(path: Path, repeats: int = 5) -> float:
    """The median wall time of one atomic write of the checkpoint at `path`."""
    payload = read_checkpoint(path)
    target = path.parent / "timing-copy.pt"
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        save_checkpoint(target, payload)
        times.append(time.perf_counter() - began)
    target.unlink()
    return sorted(times)[len(times) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--after", type=float, default=30.0, help="seconds to run on, then kill")
    parser.add_argument("extra", nargs="*", help="arguments for every run (after --)")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    log = out / "runs.log"
    saved = out / "results.json"
    result: dict[str, object] = json.loads(saved.read_text()) if saved.is_file() else {}
    result |= {"args": args.extra, "threads": torch.get_num_threads()}
    straight = out / "straight"
    if not (straight / "log.csv").is_file():
        result["straight_s"] = run(command(straight, args.extra), log)
    killed = out / "killed"
    if not (killed / "log.csv").is_file():
        result |= kill_after_first_checkpoint(command(killed, args.extra), log, args.after)
        step = inside_step(killed / "last.pt")
        result["resumed_at_step"] = step
        result["resume_s"] = run(command(killed, args.extra, resume=True), log)
    a, b = (read_checkpoint(d / "last.pt") for d in (straight, killed))
    diff = max(
        float((a["model"][k].double() - b["model"][k].double()).abs().max()) for k in a["model"]
    )
    result["max_abs_weight_difference"] = diff
    result["identical"] = all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    result["rows_straight"] = [{k: v for k, v in r.items() if k != "seconds"} for r in a["history"]]
    result["rows_resumed"] = [{k: v for k, v in r.items() if k != "seconds"} for r in b["history"]]
    result["checkpoint_mb"] = (straight / "last.pt").stat().st_size / 1e6
    result["write_s"] = write_seconds(straight / "last.pt")
    atomic_write_text(saved, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(main())
