"""Ranking quality: how well a score orders cells against a ground truth (overall, within equal
parameter counts, top-k), and scoring NB201 cells with a supernet's inherited weights."""
