"""What `score` (the ranker a budgeted search would pick cells by) can be; light to import, so
the CLI can offer the choices without loading torch."""

# The default was declared before its replication (commit 2b0a768) and replicated on 500 fresh classes with a
# retrained supernet: +0.015 Kendall tau over #params against `clean`, 0.499 within equal params.
SCORES = {
    "params+(supernet,naswot)": "the parameter count first; within equal counts, the mean of the "
    "ranks of the supernet's clean accuracy and NASWOT at initialisation",
    "params+supernet": "the parameter count first; within equal counts, the supernet's clean "
    "accuracy",
    "params+naswot": "the parameter count first; within equal counts, NASWOT at initialisation "
    "(no supernet: training-free)",
}
DEFAULT_SCORE = "params+(supernet,naswot)"
NASWOT_SCORES = ("params+(supernet,naswot)", "params+naswot")  # need NASWOT at initialisation
