"""The evaluators: exact counts summed over every rank, never averages of per-rank figures.

:mod:`.classification` (top-1 / top-5 and loss: training, ``verify.py``).
"""
from .classification import EvalResult, batch_counts, evaluate

__all__ = ["EvalResult", "batch_counts", "evaluate"]
