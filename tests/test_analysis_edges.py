"""Per-edge genotype features (analysis/edges.py)."""

from __future__ import annotations

import numpy as np

from robnas.analysis.edges import conv_edge_matrix, edge_labels
from robnas.space.search_space import get_space


def test_edge_labels_name_every_edge_and_mark_cell_inputs() -> None:
    darts = get_space("darts")
    labels = edge_labels(darts)
    assert len(labels) == darts.num_edges
    assert labels[:3] == [("0→2", True), ("1→2", True), ("0→3", True)]
    assert ("2→3", False) in labels
    nb201 = edge_labels(get_space("nb201"))
    assert nb201 == [("0→1", True), ("0→2", True), ("1→2", False), *nb201[3:]]


def test_conv_edge_matrix_marks_convolution_edges() -> None:
    space = get_space("nb201")
    g = space.parse(
        "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
    )
    matrix = conv_edge_matrix(space, [g, g])
    assert matrix.shape == (2, space.num_edges)
    assert matrix[0].tolist() == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert np.array_equal(matrix[0], matrix[1])
