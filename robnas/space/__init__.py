"""Search spaces: cell spaces (search_space.py), macro spaces (macro.py), sizing, budgets, canonical forms."""

from robnas.space import macro as _macro  # noqa: F401  (registers the "macro" kind)
