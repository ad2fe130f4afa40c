"""The published RobNet architectures (Guo et al., CVPR 2020), exactly as released."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

from robnas.genotype import Genotype
from robnas.space.search_space import get_cell_space


@dataclass(frozen=True)
class Published:
    name: str
    genotype: Genotype
    macro: dict[str, Any]
    dataset: str


# name -> (cells entry, macro entry) in robnet_architectures.json
_ENTRIES = {
    "robnet_large": ("robnet_large", "robnet_large_v1"),
    "robnet_large_v2": ("robnet_large", "robnet_large_v2"),
    "robnet_free": ("robnet_free", "robnet_free"),
}


@functools.lru_cache(maxsize=1)
def _raw() -> dict[str, Any]:
    text = (resources.files("robnas.models") / "robnet_architectures.json").read_text()
    return dict(json.loads(text))


def published_names() -> list[str]:
    return sorted(_ENTRIES)


def get_published(name: str) -> Published:
    cells_key, macro_key = _ENTRIES[name]
    raw = _raw()
    space = get_cell_space("darts")
    genotype = Genotype.from_codes("darts", raw["cells"][cells_key], space.ops, space.inputs)
    entry = raw["macro"][macro_key]
    macro = space.resolve_macro(
        C=entry["C"], layers=entry["layers"], stem_multiplier=entry["stem_multiplier"]
    )
    macro["normalize"] = False  # released models take raw [0,1] images
    return Published(name, space.validate(genotype, macro), macro, entry["dataset"])
