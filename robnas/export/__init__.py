"""Export architectures for others to use.

record.py   describe (params, FLOPs, density), the versioned JSON record, spec_from_record, load
weights.py  a run's checkpoints into a spec (checkpoint macro, supernet paths), the pt payload
traced.py   torch.export (pt2), TorchScript and ONNX, each verified against PyTorch before it is
            written
formats.py  one architecture to files in the chosen formats (render in memory, write atomically)
run.py      a study run's top-k, with trained or supernet-inherited weights
"""

from __future__ import annotations

# The format table lives here, torch-free, so `robnas export --help` lists it without importing torch.
FORMATS = ("json", "pt", "pt2", "torchscript", "onnx")
WEIGHT_FORMATS = ("pt", "pt2", "torchscript", "onnx")
SUFFIXES = {
    "json": ".json",
    "pt": ".pt",
    "pt2": ".pt2",
    "torchscript": ".torchscript.pt",
    "onnx": ".onnx",
}
