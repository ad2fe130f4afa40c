"""The network-mode protocols never read the benchmark: only CIFAR-10 is in their data folder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from data_helpers import DATA, needs

CHILD = """
import json, sys
from robnas.evaluators.lowfi import LowFidelity, FIDELITIES
from robnas.evaluators.protocol import protocol_evaluator
from robnas.genotype import Genotype
from robnas.space.search_space import get_space
FIDELITIES["probe"] = LowFidelity("probe", 4, 1, 40, 1, 20, 0.1, 20, 1, augment=False, held_out=20)
space = get_space("nb201")
small = space.resolve_macro(C=4, N=1)
g = Genotype.from_str("nb201:|avg_pool_3x3~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|nor_conv_3x3~2|")
out = {}
for protocol in ("ranker", "lowfi"):
    ev = protocol_evaluator(protocol, "pgd@1", space, final_macro=small, fidelity="probe")
    r = ev.evaluate(g)
    out[protocol] = [r.status, r.metrics["objective"]]
out["tabular_imported"] = any(m.startswith("robnas.data.tabular") or m.startswith("robnas.analysis")
                              for m in sys.modules)
print(json.dumps(out))
"""


@needs("cifar10")
def test_ranker_and_lowfi_run_on_a_folder_without_the_benchmark(tmp_path: Path) -> None:
    view = tmp_path / "data"
    view.mkdir()
    (view / "cifar10").symlink_to(DATA / "cifar10", target_is_directory=True)
    env = {**os.environ, "ROBNAS_DATA": str(view), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["ranker"][0] == "ok" and out["lowfi"][0] == "ok"
    assert out["ranker"][1] > 0 and out["lowfi"][1] > 0
    assert out["tabular_imported"] is False
