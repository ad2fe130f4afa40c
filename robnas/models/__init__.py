"""Networks: cell networks, the supernet, samplers, baselines, published architectures."""
