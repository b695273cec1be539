"""Label smoothing and mixup against hand calculations, the soft cross-entropy against Gluon's
own loss, mixup's coefficient against scipy's Beta distribution."""
import mxnet as mx
import numpy as np
import pytest

from resnest.gluon.train.losses import (draw_mixup_lam, make_targets, mixup_batch,
                                        smooth_one_hot, soft_cross_entropy)


def test_label_smoothing_values():
    t = smooth_one_hot(mx.nd.array([2, 0]), 4, 0.1).asnumpy()
    assert t[0, 2] == pytest.approx(0.925) and t[0, 0] == pytest.approx(0.025)
    assert np.allclose(t.sum(1), 1.0)


def test_mixup_pairs_batch_with_its_reverse_and_smooths_inside():
    x = mx.nd.arange(4 * 3).reshape((4, 3))
    y = mx.nd.array([0, 1, 2, 3])
    lam, eps = 0.7, 0.1
    mx_x, t = make_targets(x, y, 4, eps, lam)
    assert np.allclose(mx_x.asnumpy()[0], 0.7 * x.asnumpy()[0] + 0.3 * x.asnumpy()[3])
    s = smooth_one_hot(y, 4, eps).asnumpy()
    assert np.allclose(t.asnumpy()[0], 0.7 * s[0] + 0.3 * s[3])
    assert np.allclose(t.asnumpy().sum(1), 1.0)
    assert np.allclose(mixup_batch(x, 1.0).asnumpy(), x.asnumpy())


def test_soft_cross_entropy_matches_gluon_on_one_hot():
    logits = mx.nd.random.normal(shape=(5, 7))
    y = mx.nd.array([0, 3, 6, 2, 2])
    ours = soft_cross_entropy(logits, mx.nd.one_hot(y, 7)).asnumpy()
    ref = mx.gluon.loss.SoftmaxCrossEntropyLoss()(logits, y).asnumpy()
    assert np.allclose(ours, ref, atol=1e-5)


def test_mixup_lambda_follows_beta_alpha_alpha():
    from scipy import stats
    rng = np.random.RandomState(3)
    lams = [draw_mixup_lam(rng, 0.2) for _ in range(3000)]
    # Kolmogorov-Smirnov against scipy's Beta(0.2, 0.2); Beta(1, 1) (uniform) is rejected.
    assert stats.kstest(lams, "beta", args=(0.2, 0.2)).pvalue > 0.01
    assert stats.kstest(lams, "beta", args=(1.0, 1.0)).pvalue < 1e-6
