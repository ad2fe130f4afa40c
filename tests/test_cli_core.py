from __future__ import annotations

import json
import subprocess
import sys

import pytest

from robnas.cli import main


def test_spaces_lists_both_spaces(capsys):
    assert main(["spaces", "--json"]) == 0
    rows = {r["space"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["darts"]["edges"] == 14 and rows["darts"]["cells"] == 4**14
    assert rows["nb201"]["edges"] == 6 and rows["nb201"]["cells"] == 15625


def test_arch_info_json_for_a_published_architecture(capsys):
    assert main(["arch", "info", "robnet_large", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_params"] == 6_842_710
    assert info["flops"] > 1e9 and 0 < info["density"] <= 1 and info["edge_density"] == 1.0
    assert info["genotype"].startswith("darts:|")


def test_arch_info_of_a_genotype_at_a_preset(capsys):
    g = "nb201:|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    assert main(["arch", "info", g, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_params"] == 1_531_546


@pytest.mark.parametrize(
    "argv, message",
    [
        (["arch", "info", "robnet_huge"], "unknown architecture"),
        (["arch", "info", "darts:|bad~0|"], "darts cells have 4"),
        (["spaces", "nope/space.toml"], "not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_console_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "robnas", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "spaces" in out.stdout and "arch" in out.stdout
