"""PNG figures of the analysis, drawn off-screen (Agg, no pyplot state) and returned as bytes."""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from robnas.analysis.stats import Correlation, EdgeEffects

INPUT_COLOR, NODE_COLOR, FRONT_COLOR = "#1f77b4", "#ff7f0e", "#d62728"


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return buffer.getvalue()


def _trend(ax: object, x: np.ndarray, y: np.ndarray) -> None:
    """A least-squares line as a visual guide (the statistics are rank-based)."""
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() >= 3 and np.ptp(x[keep]) > 0:
        slope, icept = np.polyfit(x[keep], y[keep], 1)
        xs = np.linspace(x[keep].min(), x[keep].max(), 50)
        ax.plot(xs, slope * xs + icept, color="0.3", lw=1, ls="--", label="least-squares line")  # type: ignore[attr-defined]


def density_scatter(
    panels: Sequence[tuple[str, np.ndarray, Correlation]], robust: np.ndarray, ylabel: str
) -> bytes:
    """Robust accuracy against each density measure, Kendall tau and n in the panel titles."""
    fig = _figure(5.0 * len(panels), 4.2)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (label, x, tau) in zip(axes, panels, strict=True):
        jitter = np.random.default_rng(0).uniform(-0.004, 0.004, len(x))  # fixed: only for display
        ax.scatter(x + jitter, robust, s=14, alpha=0.6, edgecolor="none")
        _trend(ax, x, robust)
        ax.set_xlabel(f"{label} (fraction, 0-1)")
        ax.set_ylabel(ylabel)
        ax.set_title(
            f"{ylabel.split(' (')[0]} vs {label}\nKendall τ = {tau.coef:+.2f}, n = {tau.n}"
        )
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    return _png(fig)


def pareto_plot(
    params: np.ndarray, robust: np.ndarray, front: np.ndarray, ylabel: str, cut: float
) -> bytes:
    fig = _figure(6.4, 4.4)
    ax = fig.subplots()
    scale, unit = (1e6, "M") if params.max() >= 1e6 else (1e3, "K")
    ax.scatter(params / scale, robust, s=14, alpha=0.5, edgecolor="none", label="trial")
    ax.step(params[front] / scale, robust[front], where="post", color=FRONT_COLOR, lw=1.5)
    ax.scatter(params[front] / scale, robust[front], s=30, color=FRONT_COLOR, label="Pareto front")
    ax.axvline(cut / scale, color="0.4", ls=":", lw=1, label="median parameters (small-budget cut)")
    ax.set_xlabel(f"parameters ({unit})")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{ylabel.split(' (')[0]} vs parameters (n = {len(params)})")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    return _png(fig)


def edge_effects_plot(effects: EdgeEffects, ylabel: str) -> bytes:
    order = [i for i in effects.ranking() if np.isfinite(effects.coef[i])][::-1]
    fig = _figure(6.4, 1.2 + 0.32 * max(len(order), 3))
    ax = fig.subplots()
    coef = effects.coef[order]
    err = np.vstack([coef - effects.low[order], effects.high[order] - coef])
    colors = [INPUT_COLOR if effects.from_input[i] else NODE_COLOR for i in order]
    ax.barh(range(len(order)), coef, xerr=np.nan_to_num(err), color=colors, capsize=3)
    ax.set_yticks(range(len(order)), [f"edge {effects.names[i]}" for i in order])
    ax.axvline(0, color="0.2", lw=0.8)
    ax.set_xlabel(f"effect of a convolution on the edge ({ylabel.split(' (')[0]}, pp), 95% CI")
    ax.set_title(
        f"Edge effects under a small budget (ridge, n = {effects.n} trials)\n"
        "blue: edge from a cell input, orange: between intermediate nodes",
        fontsize=10,
    )
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def fsp_scatter(
    cells: Sequence[tuple[int, np.ndarray, Correlation]], robust: np.ndarray, ylabel: str
) -> bytes:
    cols = len(cells) if len(cells) <= 5 else 4
    rows = -(-len(cells) // cols)
    fig = _figure(3.3 * cols, 2.9 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (k, x, tau) in zip(axes, cells, strict=False):
        ax.scatter(x, robust, s=10, alpha=0.6, edgecolor="none")
        ax.set_title(f"cell {k}: τ = {tau.coef:+.2f} (n = {tau.n})", fontsize=9)
        ax.set_xlabel("FSP distance, clean vs adv. (a.u.)", fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.grid(alpha=0.3)
    for ax in axes[len(cells) :]:
        ax.set_visible(False)
    fig.suptitle("Robust accuracy vs FSP distance per cell (shallow → deep)")
    return _png(fig)


def tau_by_cell(cells: Sequence[tuple[int, Correlation]]) -> bytes:
    fig = _figure(6.0, 3.8)
    ax = fig.subplots()
    ks = np.array([k for k, _ in cells])
    coef = np.array([c.coef for _, c in cells])
    err = np.vstack([coef - [c.low for _, c in cells], [c.high for _, c in cells] - coef])
    ax.errorbar(ks, coef, yerr=np.nan_to_num(err), fmt="o-", capsize=3)
    ax.axhline(0, color="0.2", lw=0.8)
    ax.set_xlabel("cell index (0 = shallowest)")
    ax.set_ylabel("Kendall τ (FSP distance vs robust acc.)")
    ax.set_title(f"Does the FSP signal sit in deeper cells? (n = {cells[0][1].n}, 95% CI)")
    ax.set_xticks(ks)
    ax.grid(alpha=0.3)
    return _png(fig)


def indicator_bars(names: Sequence[str], taus: Sequence[Correlation], target: str) -> bytes:
    order = np.argsort([t.coef for t in taus])
    fig = _figure(6.6, 1.4 + 0.34 * len(names))
    ax = fig.subplots()
    coef = np.array([taus[i].coef for i in order])
    err = np.vstack([coef - [taus[i].low for i in order], [taus[i].high for i in order] - coef])
    colors = ["#2ca02c" if c > 0 else "#9467bd" for c in coef]
    ax.barh(range(len(order)), coef, xerr=np.nan_to_num(err), color=colors, capsize=3)
    ax.set_yticks(range(len(order)), [f"{names[i]} ({taus[i].coef:+.2f})" for i in order])
    ax.set_xlim(-1.1, 1.1)
    ax.axvline(0, color="0.2", lw=0.8)
    ax.set_xlabel(f"Kendall τ with {target} (95% bootstrap CI)")
    ax.set_title(f"Indicators vs {target} (n = {taus[0].n} trials)")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def same_params_plot(
    values: np.ndarray, edges: Sequence[str], share_top: np.ndarray, share_all: np.ndarray, top: int
) -> bytes:
    fig = _figure(11.0, 4.2)
    left, right = fig.subplots(1, 2)
    left.hist(values, bins=30, color="#1f77b4", alpha=0.8)
    left.set_xlabel("mean adversarial accuracy (%)")
    left.set_ylabel("architectures")
    left.set_title(
        f"Same parameter count: two 3x3 convs, no 1x1 (n = {len(values)})\n"
        f"range {values.min():.1f}% – {values.max():.1f}%"
    )
    left.grid(alpha=0.3)
    x = np.arange(len(edges))
    right.bar(x - 0.2, 100 * share_top, width=0.4, label=f"top {top}")
    right.bar(x + 0.2, 100 * share_all, width=0.4, label=f"all {len(values)}")
    right.set_xticks(x, [f"edge {e}" for e in edges])
    right.set_ylabel("architectures with a 3x3 conv on the edge (%)")
    right.set_title("Where the most robust put their convolutions")
    right.legend(fontsize=8)
    right.grid(axis="y", alpha=0.3)
    return _png(fig)
