"""Declared objectives: the rankers a budgeted search may score cells by (scores.py) and the
network-mode protocols with the objective each maximises per target (protocols.py). Formulas
of measured values only, torch-free, so evaluators, the search and the CLI all read them from
one layer below."""
