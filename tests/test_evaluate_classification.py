"""The classification evaluator against hand counts: only the valid rows of each batch, top-1,
top-5 and cross-entropy by hand, and a peer rank's counts added, not averaged."""
import math

import mxnet as mx
import numpy as np
import pytest

from _train import ONE, ListLoader, PeerDist
from resnest.gluon.evaluate import evaluate


class _FixedNet:
    """Returns stored logits whatever the input."""

    def __init__(self, logits):
        self.logits = logits

    def __call__(self, x):
        return self.logits[:x.shape[0]]


def test_evaluate_counts_only_valid_samples_top1_top5():
    classes = 6
    logits = mx.nd.array(np.tile(np.arange(classes, dtype=np.float32), (4, 1)))  # ranks 5,4,..
    labels = mx.nd.array([5, 1, 3, 0])  # top1 hit, top5 hit, top5 hit, miss
    data = mx.nd.zeros((4, 3, 8, 8))
    loader = ListLoader([(data, labels, 4), (data, labels, 2), (data, labels, 0)])
    out = evaluate(_FixedNet(logits), loader, ONE).metrics()
    assert out["val_samples"] == 6
    assert out["top1"] == pytest.approx(100 * 2 / 6)      # label 5 twice
    assert out["top5"] == pytest.approx(100 * 5 / 6)      # all but label 0 (4 + 1,5 of 2nd)
    # Cross-entropy by hand: logits 0..5, log-sum-exp = log(sum e^k); label 5 costs lse - 5.
    lse = math.log(sum(math.exp(k) for k in range(classes)))
    want = (2 * (lse - 5) + 2 * (lse - 1) + (lse - 3) + (lse - 0)) / 6
    assert out["val_loss"] == pytest.approx(want)
    # A peer's counts [top-1, top-5, images, loss, speeds] are added, not averaged.
    peer = evaluate(_FixedNet(logits), loader, PeerDist([1, 1, 4, 0, 0, 0])).metrics()
    assert peer["val_samples"] == 10 and peer["top1"] == pytest.approx(100 * 3 / 10)
