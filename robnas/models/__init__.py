"""Networks: cell networks, the supernet, samplers, baselines, published architectures, macro
families; `build(space, genotype, macro, dataset)` builds what a space's genotype names
(builder.py) and sizing.py counts its parameters without building it."""

from robnas.models.builder import build, build_supernet

__all__ = ["build", "build_supernet"]
