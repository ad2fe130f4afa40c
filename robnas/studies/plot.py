"""The study's figure: success rate and 1-SSIM per model and attack, as grouped bars (Agg PNG)."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from robnas.io import atomic_write_bytes


def plot_png(rows: list[dict[str, Any]], attacks: Sequence[str], path: Path) -> None:
    names = [r["model"] for r in rows]
    fig = Figure(figsize=(max(6.0, 0.7 * len(names) + 2), 7), layout="constrained")
    FigureCanvasAgg(fig)
    panels = (("success_rate", "attack success rate"), ("one_minus_ssim", "1-SSIM (successful)"))
    axes = fig.subplots(len(panels), 1, sharex=True)
    width = 0.8 / max(1, len(attacks))
    for ax, (metric, label) in zip(axes, panels, strict=True):
        for j, attack in enumerate(attacks):
            values = [_value(r.get(f"{attack}_{metric}")) for r in rows]
            xs = [i + (j - (len(attacks) - 1) / 2) * width for i in range(len(rows))]
            ax.bar(xs, values, width, label=attack)
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)  # all-zero bars would otherwise centre the axis on 0
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylim(0, 1.05)
    axes[0].legend(fontsize="small")
    axes[-1].set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize="small")
    fig.suptitle("Architectural modifications: CIFAR-10 test images")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    atomic_write_bytes(path, buf.getvalue())


def _value(v: Any) -> float:
    return 0.0 if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)
