"""Cell drawing: the graph (nodes, one labelled edge per active op) and the written image."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import robnas
from robnas.analysis.draw import _arc, _clear_bend, cell_graph, draw_cell, draw_spec
from robnas.cli import main
from robnas.errors import ConfigError
from robnas.models.resolve import resolve_arch

DARTS = (
    "darts:|sep_conv_3x3~0|none~1|+|skip_connect~0|sep_conv_3x3~1|none~2|"
    "+|none~0|none~1|none~2|none~3|+|sep_conv_3x3~0|skip_connect~1|sep_conv_3x3~1|none~2|none~3|skip_connect~4|"
)
NB201 = "nb201:|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _op_edges(graph) -> list[tuple[str, str, str]]:
    return sorted((u, v, d["op"]) for u, v, d in graph.edges(data=True) if d["kind"] == "op")


def test_darts_cell_graph_has_one_labelled_edge_per_active_op() -> None:
    g = robnas.Genotype.from_str(DARTS)
    graph = cell_graph(g)
    assert list(graph.nodes) == ["c_{k-2}", "c_{k-1}", "0", "1", "2", "3", "c_{k}"]
    assert [graph.nodes[n]["kind"] for n in graph.nodes] == ["input"] * 2 + ["node"] * 4 + [
        "output"
    ]
    assert _op_edges(graph) == sorted(
        [
            ("c_{k-2}", "0", "sep_conv_3x3"),
            ("c_{k-2}", "1", "skip_connect"),
            ("c_{k-1}", "1", "sep_conv_3x3"),
            ("c_{k-2}", "3", "sep_conv_3x3"),
            ("c_{k-1}", "3", "skip_connect"),
            ("c_{k-1}", "3", "sep_conv_3x3"),  # two ops on one edge: two arrows
            ("2", "3", "skip_connect"),
        ]
    )
    assert len(_op_edges(graph)) == sum(len(e) for e in g.edges(0))
    assert graph.nodes["2"]["zero"] and not graph.nodes["3"]["zero"]
    # concat output: every intermediate node feeds c_k, unlabelled
    outputs = [(u, v) for u, v, d in graph.edges(data=True) if d["kind"] == "output"]
    assert sorted(outputs) == [(n, "c_{k}") for n in ("0", "1", "2", "3")]
    assert all(d["op"] is None for _, _, d in graph.edges(data=True) if d["kind"] == "output")


def test_nb201_cell_graph_input_nodes_and_last_output() -> None:
    graph = cell_graph(robnas.Genotype.from_str(NB201))
    assert list(graph.nodes) == ["input", "1", "2", "3", "output"]
    assert _op_edges(graph) == sorted(
        [
            ("input", "1", "nor_conv_3x3"),
            ("1", "2", "avg_pool_3x3"),
            ("input", "3", "skip_connect"),
            ("1", "3", "nor_conv_1x1"),
        ]
    )
    outputs = [(u, v) for u, v, d in graph.edges(data=True) if d["kind"] == "output"]
    assert outputs == [("3", "output")]


def test_cell_free_genotype_draws_the_requested_cell() -> None:
    space = robnas.get_space("nb201")
    macro = space.resolve_macro("tiny")  # 3 cells
    g = space.sample(np.random.default_rng(0), free=True, macro=macro)
    assert not g.shared
    for k in range(len(g.cells)):
        assert len(_op_edges(cell_graph(g, k))) == sum(len(e) for e in g.edges(k))
        assert cell_graph(g, k).graph["cell"] == k


def test_draw_writes_png_with_title(tmp_path: Path) -> None:
    spec = resolve_arch(DARTS, size="tiny")
    path = draw_spec(spec, tmp_path / "cell.png", cell=1)
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 10_000
    svg = draw_cell(spec.genotype, tmp_path / "cell.svg", cell=1, macro=spec.macro).read_text()
    # title names space and cell index (layer 1 of 5 is the first reduction cell)
    assert "darts cell 1 (reduction)" in svg
    assert svg.count("sep_conv_3x3") >= 4 and svg.count("skip_connect") >= 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files


def test_draw_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="baseline"):
        draw_spec(resolve_arch("resnet18"), tmp_path / "x.png")
    with pytest.raises(ConfigError, match="out of range"):
        draw_spec(resolve_arch(NB201, size="tiny"), tmp_path / "x.png", cell=3)
    with pytest.raises(ConfigError, match=".png"):
        draw_spec(resolve_arch(NB201, size="tiny"), tmp_path / "x.gif")
    assert list(tmp_path.iterdir()) == []


def test_edges_bend_around_nodes_in_their_way() -> None:
    p, q, node, radius = (0.0, 0.0), (6.0, 0.0), (3.0, 0.1), 0.38
    rad = _clear_bend(p, q, [0.0], [node], radius)
    assert rad != 0.0
    closest = min(math.dist(_arc(p, q, rad, t / 50)[:2], node) for t in range(51))
    assert closest > radius
    assert _clear_bend(p, q, [0.0], [(3.0, 3.0)], radius) == 0.0  # nothing in the way: straight


def test_cli_arch_draw(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "robnet.png"
    assert main(["arch", "draw", "robnet_large", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(PNG_MAGIC)
    assert str(out) in capsys.readouterr().out
    assert main(["arch", "draw", "resnet18", "--out", str(tmp_path / "r.png")]) == 2
    assert "baseline" in capsys.readouterr().err
