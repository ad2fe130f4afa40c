"""What `score` (the ranker a budgeted search would pick cells by) can be; light to import, so
the CLI can offer the choices without loading torch."""

# The default, by the rule declared in experiments/supernet_seeds_nb201.py before its supernets
# were scored: over six 32-epoch NB201 supernets the supernet and NASWOT together ranked `clean`
# no better than NASWOT alone (-0.0001 Kendall tau on average), so the training-free ranker
# became the default. That average was computed with each signal ranked over all cells; ranked
# within each parameter group, as the combined rankers are documented to, it is +0.0083 and the
# rule would keep params+(supernet,naswot). The default is left as it was until the rankers
# declared for robustness replace it (docs/ranking.md).
SCORES = {
    "params+(supernet,naswot)": "the parameter count first; within equal counts, the mean of the "
    "ranks of the supernet's clean accuracy and NASWOT at initialisation",
    "params+supernet": "the parameter count first; within equal counts, the supernet's clean "
    "accuracy",
    "params+naswot": "the parameter count first; within equal counts, NASWOT at initialisation "
    "(no supernet: training-free)",
}
DEFAULT_SCORE = "params+naswot"
NASWOT_SCORES = ("params+(supernet,naswot)", "params+naswot")  # need NASWOT at initialisation
