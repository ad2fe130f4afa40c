"""What `score` (the ranker a budgeted search would pick cells by) can be; light to import, so
the CLI can offer the choices without loading torch."""

# The default, by the rule declared in experiments/supernet_seeds_nb201.py before its supernets
# were scored: over six 32-epoch NB201 supernets (seeds and commands differing) the supernet and
# NASWOT together ranked `clean` no better than NASWOT alone (-0.0001 Kendall tau on average; the
# supernet alone ranged 0.13-0.44 within equal params), so the training-free ranker is the default
# and the combinations stay one flag away.
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
