"""Analysis: read a study run and test the robustness findings on it.

load.py      a run directory -> RunData (usable trials, accuracies in %, genotypes, settings)
stats.py     correlations with bootstrap intervals, Pareto front, per-edge ridge effects
edges.py     per-edge genotype features (edge names, convolution indicators)
markdown.py  tables, intervals, verdict sentences, the report Section
plots.py     PNG figures through matplotlib's Agg canvas
robnet.py    RobNet's three findings (density, budget, FSP per cell) as report sections
nb201.py     the same-parameter-count study on the NB201 robustness dataset
report.py    analyze(run_dir): every section, written atomically with report.md last
draw.py      one cell of a genotype drawn as a graph (`robnas arch draw`)
"""
