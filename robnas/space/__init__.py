"""Search spaces: the protocol (base.py), cell spaces (cell.py), macro spaces (macro.py), loading
by name (search_space.py), budgets, canonical forms. Spaces are data: networks are built in
robnas.models."""
