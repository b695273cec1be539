"""The evaluators: exact counts summed over every rank, never averages of per-rank figures.

:mod:`.classification` (top-1 / top-5 and loss: training, ``verify.py``); :mod:`.detection`
(COCO mAP by pycocotools' ``COCOeval``: detection training, ``evaluate_detection.py``; the
rows of every rank gathered, each image once).
"""
from .classification import EvalResult, batch_counts, evaluate

__all__ = ["EvalResult", "batch_counts", "evaluate"]
