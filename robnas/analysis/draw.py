"""Draw one cell of a genotype as a directed graph: inputs, intermediate nodes, output.

`cell_graph` builds the networkx graph (one edge per active op, zero edges left out; nodes
feeding the cell output join it with unlabelled edges); `draw_cell` lays it out left to right
and writes an image through matplotlib's Agg canvas (no pyplot, no display needed).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import networkx as nx
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, FancyArrowPatch

from robnas.errors import ConfigError
from robnas.genotype import Genotype
from robnas.io import atomic_write_bytes
from robnas.models.network import reduction_layers
from robnas.space.cell import CellSpace
from robnas.space.search_space import cell_space, get_cell_space

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from robnas.models.resolve import ArchSpec

__all__ = ["cell_graph", "draw_cell", "draw_spec", "render_cell"]

# Colour per op in the space's op order: convolutions stand out from skips and pools.
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"]
COLUMN = 3.0  # horizontal distance between node columns (data units; axes use equal aspect)
NODE_COLOURS = {"input": "#cfe2f3", "node": "#fff2cc", "output": "#d9ead3"}


def _space_of(genotype: Genotype, space: CellSpace | None) -> CellSpace:
    return cell_space(space) if space is not None else get_cell_space(genotype.space)


def _input_names(space: CellSpace) -> list[str]:
    if space.inputs == 1:
        return ["input"]
    # DARTS convention: c_{k-2}, c_{k-1} are the outputs of the two previous cells
    return [f"c_{{k-{space.inputs - j}}}" for j in range(space.inputs)]


def cell_graph(
    genotype: Genotype, cell: int = 0, *, space: CellSpace | None = None
) -> nx.MultiDiGraph:
    """The cell used at layer `cell` as a MultiDiGraph.

    Nodes carry `kind` (input/node/output), `label` and `column` (left-to-right rank); a node
    with no active incoming op has `zero=True`. Op edges carry `op` (key = op name); the edges
    into the output node carry `op=None` and `kind="output"`.
    """
    sp = _space_of(genotype, space)
    if not 0 <= cell < max(len(genotype.cells), 1) and not genotype.shared:
        raise ConfigError(f"cell {cell} out of range: the genotype has {len(genotype.cells)} cells")
    cell_def = genotype.cell_for_layer(cell)
    graph = nx.MultiDiGraph(space=sp.name, cell=cell, shared=genotype.shared, output=sp.output)
    names = _input_names(sp)
    for name in names:
        graph.add_node(name, kind="input", label=name, column=0, zero=False)
    start = 1 if sp.inputs == 1 else 0  # NB201 numbers its input as node 0
    for i, node in enumerate(cell_def):
        name = str(i + start)
        names.append(name)
        graph.add_node(name, kind="node", label=name, column=i + 1, zero=not any(node))
        for pred, edge in enumerate(node):
            for op in sorted(edge, key=lambda o: sp.ops.index(o) if o in sp.ops else 0):
                graph.add_edge(names[pred], name, key=op, op=op, kind="op")
    out = "c_{k}" if sp.inputs > 1 else "output"
    graph.add_node(out, kind="output", label=out, column=len(cell_def) + 1, zero=False)
    feeding = names[sp.inputs :] if sp.output == "concat" else names[-1:]
    for name in feeding:
        graph.add_edge(name, out, key="output", op=None, kind="output")
    return graph


def _positions(graph: nx.MultiDiGraph) -> dict[str, tuple[float, float]]:
    """Columns left to right; intermediate nodes zig-zag so edges skipping a node pass it by."""
    pos: dict[str, tuple[float, float]] = {}
    inputs = [n for n, d in graph.nodes(data=True) if d["kind"] == "input"]
    for j, name in enumerate(inputs):
        pos[name] = (0.0, (len(inputs) - 1) / 2 * 5.0 - 5.0 * j)
    for name, data in graph.nodes(data=True):
        col = data["column"]
        if data["kind"] == "node":
            pos[name] = (COLUMN * col, 1.3 if col % 2 else -1.3)
        elif data["kind"] == "output":
            pos[name] = (COLUMN * col, 0.0)
    return pos


def _arc(
    p: tuple[float, float], q: tuple[float, float], rad: float, t: float = 0.5
) -> tuple[float, float, float]:
    """Point at `t` on matplotlib's arc3 Bezier from p to q (equal-aspect axes) and the text
    angle along the curve there, kept upright."""
    dx, dy = q[0] - p[0], q[1] - p[1]
    cx, cy = (p[0] + q[0]) / 2 + rad * dy, (p[1] + q[1]) / 2 - rad * dx
    x = (1 - t) ** 2 * p[0] + 2 * t * (1 - t) * cx + t**2 * q[0]
    y = (1 - t) ** 2 * p[1] + 2 * t * (1 - t) * cy + t**2 * q[1]
    tx = 2 * (1 - t) * (cx - p[0]) + 2 * t * (q[0] - cx)
    ty = 2 * (1 - t) * (cy - p[1]) + 2 * t * (q[1] - cy)
    angle = math.degrees(math.atan2(ty, tx))
    if angle > 90 or angle < -90:
        angle -= 180 if angle > 0 else -180
    return x, y, angle


SAMPLES = tuple(k / 40 for k in range(2, 39))  # points along a curve checked against nodes


def _clear_bend(
    p: tuple[float, float],
    q: tuple[float, float],
    offsets: list[float],
    others: list[tuple[float, float]],
    radius: float,
) -> float:
    """The smallest arc3 bend for which the curves (one per offset) pass no other node."""

    def hits(base: float) -> int:
        return sum(
            1
            for off in offsets
            for t in SAMPLES
            for c in others
            if math.dist(_arc(p, q, base + off, t)[:2], c) < radius + 0.2
        )

    candidates = (0.0, 0.12, -0.12, 0.25, -0.25, 0.38, -0.38)
    return min(candidates, key=lambda b: (hits(b), candidates.index(b)))


def _label_points(x: float, y: float, angle: float, text: str) -> list[tuple[float, float]]:
    """A label's footprint as points along its baseline (about 0.085 data units per character)."""
    half = 0.085 * len(text) / 2
    ux, uy = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    return [(x + f * half * ux, y + f * half * uy) for f in (-1.0, -0.5, 0.0, 0.5, 1.0)]


def _place_label(
    p: tuple[float, float],
    q: tuple[float, float],
    rad: float,
    text: str,
    taken: list[tuple[float, float]],
    nodes: list[tuple[float, float]],
    radius: float,
) -> tuple[float, float, float]:
    """The first spot along the curve whose label clears placed labels and the nodes."""

    def clash(points: list[tuple[float, float]]) -> float:
        near = sum(1 for a in points for b in taken if math.dist(a, b) < 0.28)
        inside = sum(1 for a in points for c in nodes if math.dist(a, c) < radius + 0.12)
        return near + 3 * inside

    best: tuple[float, tuple[float, float, float]] | None = None
    for t in (0.5, 0.4, 0.6, 0.32, 0.68, 0.26, 0.74):
        spot = _arc(p, q, rad, t)
        score = clash(_label_points(*spot, text))
        if best is None or score < best[0]:
            best = (score, spot)
        if score == 0:
            break
    assert best is not None
    taken.extend(_label_points(*best[1], text))
    return best[1]


def render_cell(
    ax: Axes, graph: nx.MultiDiGraph, ops: tuple[str, ...], title: str, caption: str = ""
) -> None:
    pos = _positions(graph)
    colours = {op: PALETTE[i % len(PALETTE)] for i, op in enumerate(ops)}
    radius = 0.36
    circles: dict[str, Circle] = {}
    for name, data in graph.nodes(data=True):
        x, y = pos[name]
        face = "#eeeeee" if data["zero"] else NODE_COLOURS[data["kind"]]
        circles[name] = Circle((x, y), radius, fc=face, ec="#333333", lw=1.2, zorder=5)
        ax.add_patch(circles[name])
        label = data["label"]
        math_label = "_" in label
        text = f"${label}$" if math_label else label
        size = 11 if math_label or len(label) <= 2 else 8
        ax.text(x, y, text, ha="center", va="center", fontsize=size, zorder=6)
        if data["zero"]:
            ax.text(x, y - radius - 0.18, "zero", ha="center", fontsize=7, color="#777777")
    taken: list[tuple[float, float]] = []
    centres = list(pos.values())
    # Parallel ops on one (u, v) pair bend apart; longer spans bend a little so they clear nodes.
    pairs: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for u, v, data in graph.edges(data=True):
        pairs.setdefault((u, v), []).append((v, data))
    for (u, v), items in pairs.items():
        p, q = pos[u], pos[v]
        offsets = [(m - (len(items) - 1) / 2) * 0.35 for m in range(len(items))]
        others = [c for name, c in pos.items() if name not in (u, v)]
        base = _clear_bend(p, q, offsets, others, radius)
        for m, (_, data) in enumerate(items):
            rad = base + offsets[m]
            is_op = data["kind"] == "op"
            colour = colours.get(data["op"], "#555555") if is_op else "#999999"
            ax.add_patch(
                FancyArrowPatch(
                    p,
                    q,
                    connectionstyle=f"arc3,rad={rad}",
                    arrowstyle="-|>",
                    mutation_scale=14,
                    lw=2.0 if is_op else 1.0,
                    alpha=1.0 if is_op else 0.6,
                    linestyle="-" if is_op else (0, (3, 2)),
                    color=colour,
                    patchA=circles[u],
                    patchB=circles[v],
                    shrinkA=1,
                    shrinkB=1,
                    zorder=1,
                )
            )
            if is_op:
                x, y, angle = _place_label(p, q, rad, data["op"], taken, centres, radius)
                ax.text(
                    x,
                    y,
                    data["op"],
                    fontsize=8,
                    color=colour,
                    ha="center",
                    va="center",
                    rotation=angle,
                    rotation_mode="anchor",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.9},
                    zorder=3,
                )
    xs = [p[0] for p in pos.values()]
    ys = [p[1] for p in pos.values()]
    ax.set_xlim(min(xs) - 0.7, max(xs) + 0.7)
    ax.set_ylim(min(ys) - 1.0, max(ys) + 1.0)
    ax.set_aspect("equal")  # keeps arc3 curves and their label points in the same coordinates
    ax.axis("off")
    used = [op for op in ops if any(d.get("op") == op for _, _, d in graph.edges(data=True))]
    handles = [Line2D([], [], color=colours[op], lw=2, label=op) for op in used]
    output_label = "concat" if graph.graph["output"] == "concat" else "output"
    handles.append(
        Line2D([], [], color="#999999", lw=1.2, linestyle=(0, (3, 2)), label=output_label)
    )
    ax.legend(
        handles=handles,
        loc="upper center",
        bbox_to_anchor=(0.5, 0.0),
        ncol=len(handles),
        frameon=False,
        fontsize=8,
    )
    ax.figure.suptitle(title, fontsize=11)
    if caption:
        ax.set_title(caption, fontsize=8, color="#444444")


def _title(
    genotype: Genotype, sp: CellSpace, cell: int, macro: dict[str, Any] | None
) -> tuple[str, str]:
    layers = sp.num_layers(macro)
    kind = ""
    if sp.family == "darts":
        kind = " (reduction)" if cell in reduction_layers(layers) else " (normal)"
    sharing = (
        f"one cell shared by all {layers} layers"
        if genotype.shared
        else f"cell-free, {layers} cells"
    )
    title = f"{sp.name} cell {cell}{kind}: {sharing}"
    edges = genotype.edges(0 if genotype.shared else cell)
    active = sum(len(e) for e in edges)
    caption = (
        f"{active} active ops on {sum(bool(e) for e in edges)} of {len(edges)} edges "
        f"(zero edges not drawn)"
    )
    return title, caption


def draw_cell(
    genotype: Genotype,
    path: str | Path,
    *,
    cell: int = 0,
    space: CellSpace | None = None,
    macro: dict[str, Any] | None = None,
    dpi: int = 150,
) -> Path:
    """Write the drawing of the cell used at layer `cell`; the format follows the suffix."""
    sp = _space_of(genotype, space)
    m = sp.resolve_macro() if macro is None else macro
    layers = sp.num_layers(m)
    if not 0 <= cell < layers:
        raise ConfigError(f"--cell {cell} out of range: the network has cells 0..{layers - 1}")
    target = Path(path)
    fmt = target.suffix.lstrip(".").lower() or "png"
    if fmt not in ("png", "svg", "pdf"):
        raise ConfigError(f"cannot draw to {target.name}: use a .png, .svg or .pdf file")
    graph = cell_graph(genotype, cell, space=sp)
    title, caption = _title(genotype, sp, cell, m)
    # Size the figure to the layout's extent (equal aspect), plus room for titles and legend.
    pos = _positions(graph).values()
    span_x = max(x for x, _ in pos) - min(x for x, _ in pos) + 1.4
    span_y = max(y for _, y in pos) - min(y for _, y in pos) + 2.0
    fig = Figure(figsize=(max(0.75 * span_x, 6.0), 0.75 * span_y + 1.3))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    render_cell(ax, graph, sp.ops, title, caption)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=dpi)
    atomic_write_bytes(target, buffer.getvalue())
    return target


def draw_spec(spec: ArchSpec, path: str | Path, *, cell: int = 0) -> Path:
    """`robnas arch draw`: draw a genotype's (or published RobNet's) cell."""
    if spec.genotype is None or spec.space is None:
        raise ConfigError(
            f"{spec.name} is a baseline with no cell to draw; give a genotype or a published RobNet"
        )
    return draw_cell(spec.genotype, path, cell=cell, space=cell_space(spec.space), macro=spec.macro)
