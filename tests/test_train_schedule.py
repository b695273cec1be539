"""The recipe's schedules against hand calculations: warm-up + cosine LR, the segmentation
recipe's poly LR (and GluonCV's own LRScheduler), the linear scaling rule, DropBlock's ramp
also against the authors' scheduler."""
import mxnet as mx
import numpy as np
import pytest

from conftest import authors_package

from resnest.gluon.train.schedule import dropblock_prob, global_lr, learning_rate, \
    poly_learning_rate


def test_lr_warmup_then_cosine_to_zero():
    base, total, warm = 0.4, 1000, 100
    assert learning_rate(0, total, warm, base) == 0.0
    assert learning_rate(50, total, warm, base) == pytest.approx(0.2)
    assert learning_rate(100, total, warm, base) == pytest.approx(base)
    assert learning_rate(550, total, warm, base) == pytest.approx(base / 2)
    assert learning_rate(total, total, warm, base) == pytest.approx(0.0, abs=1e-12)
    after = [learning_rate(s, total, warm, base) for s in range(100, total)]
    assert all(a >= b for a, b in zip(after, after[1:]))
    assert global_lr(0.05, 64) == pytest.approx(3.2)


def test_lr_without_warmup_starts_at_base():
    assert learning_rate(0, 10, 0, 0.1) == pytest.approx(0.1)


def test_dropblock_ramp_is_linear_to_target():
    # The authors' scheduler: 0.1 * (epoch + 1) / num_epochs.
    probs = [dropblock_prob(e, 10, 0.1) for e in range(10)]
    assert probs[0] == pytest.approx(0.01) and probs[-1] == pytest.approx(0.1)
    assert np.allclose(np.diff(probs), 0.01)
    assert dropblock_prob(0, 1, 0.1) == pytest.approx(0.1)


def test_poly_lr_by_hand():
    # 11 updates, no warm-up: t / (n - 1) = t / 10, lr = 0.01 * (1 - t / 10) ** 0.9.
    assert poly_learning_rate(0, 11, 0, 0.01) == pytest.approx(0.01)
    assert poly_learning_rate(5, 11, 0, 0.01) == pytest.approx(0.01 * 0.5 ** 0.9)   # 0.005359
    assert poly_learning_rate(5, 11, 0, 0.01) == pytest.approx(0.0053589, rel=1e-4)
    assert poly_learning_rate(10, 11, 0, 0.01) == 0.0
    assert poly_learning_rate(12, 11, 0, 0.01) == 0.0                  # clipped past the end
    # 4 warm-up updates of 0.1 / 4 each, then poly over the 6 others (t / 5).
    assert [poly_learning_rate(s, 10, 4, 0.1) for s in range(4)] == \
        pytest.approx([0.0, 0.025, 0.05, 0.075])
    assert poly_learning_rate(4, 10, 4, 0.1) == pytest.approx(0.1)
    assert poly_learning_rate(6, 10, 4, 0.1) == pytest.approx(0.1 * 0.6 ** 0.9)
    assert poly_learning_rate(1, 11, 0, 0.01, power=2.0) == pytest.approx(0.01 * 0.81)


def test_poly_lr_is_gluoncvs_scheduler():
    from gluoncv.utils import LRScheduler
    theirs = LRScheduler(mode="poly", base_lr=0.01, nepochs=3, iters_per_epoch=7, power=0.9)
    for step in range(21):
        assert poly_learning_rate(step, 21, 0, 0.01) == pytest.approx(theirs(step), abs=1e-15)


def test_the_probability_ramp_is_the_authors_scheduler():
    module = authors_package("dropblock")
    net = mx.gluon.nn.HybridSequential()
    net.add(module.DropBlock(0.0, 3, 4, 8, 8))
    for num_epochs in (1, 5, 270):
        scheduler = module.DropBlockScheduler(net, 0, 0.1, num_epochs)
        epochs = {0, num_epochs // 2, num_epochs - 1} | ({1} if num_epochs > 1 else set())
        for epoch in sorted(epochs):
            scheduler(epoch)
            assert dropblock_prob(epoch, num_epochs, 0.1) == pytest.approx(net[0].drop_prob)
