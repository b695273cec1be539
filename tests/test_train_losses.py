"""Label smoothing and mixup against hand calculations, the soft cross-entropy against Gluon's
own loss, mixup's coefficient against scipy's Beta distribution; the segmentation loss against
a numpy cross-entropy over the labelled pixels and against the gradient of GluonCV's own
``MixSoftmaxCrossEntropyLoss``."""
import mxnet as mx
import numpy as np
import pytest

from resnest.gluon.train.losses import (draw_mixup_lam, make_targets, mixup_batch,
                                        segmentation_loss, smooth_one_hot, soft_cross_entropy)


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


def _seg_batch(n=3, classes=5, h=6, w=7):
    rng = np.random.RandomState(3)
    target = rng.randint(-1, classes, size=(n, h, w)).astype(np.float32)   # -1: unlabelled
    target[2] = -1                                         # an image with no labelled pixel
    return (mx.nd.array(rng.randn(n, classes, h, w)), mx.nd.array(rng.randn(n, classes, h, w)),
            mx.nd.array(target))


def test_segmentation_loss_is_the_cross_entropy_of_the_labelled_pixels():
    main, aux, target = _seg_batch()
    z, t = main.asnumpy().astype(np.float64), target.asnumpy().astype(int)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    ce = [-logp[i, t[i][m], np.nonzero(m)[0], np.nonzero(m)[1]].sum()
          for i, m in enumerate(t >= 0)]
    labelled = (t >= 0).sum()
    got = segmentation_loss((main,), target).asnumpy()
    # per image: its summed pixel losses x (images / labelled pixels of the batch)
    np.testing.assert_allclose(got, np.array(ce) * 3 / labelled, rtol=1e-5)
    assert got[2] == 0 and got.mean() == pytest.approx(sum(ce) / labelled, rel=1e-5)
    with_aux = segmentation_loss((main, aux), target, aux_weight=0.4).asnumpy()
    only_aux = segmentation_loss((aux,), target).asnumpy()
    np.testing.assert_allclose(with_aux, got + 0.4 * only_aux, rtol=1e-5)


def _grads(loss, main, aux):
    a, b = main.copy(), aux.copy()
    a.attach_grad()
    b.attach_grad()
    with mx.autograd.record():
        value = loss(a, b)
    value.backward()
    return a.grad.asnumpy(), b.grad.asnumpy()


def test_segmentation_loss_gradient_is_gluoncvs():
    """GluonCV's loss backpropagates through ``SoftmaxOutput``, which ignores the gradient it
    is given: its ``aux_weight`` scales the reported loss but not the auxiliary gradient.
    Ours weights both; with weight 1 the gradients are the same."""
    from gluoncv.loss import MixSoftmaxCrossEntropyLoss
    main, aux, target = _seg_batch()

    def theirs(weight):
        return _grads(lambda a, b: MixSoftmaxCrossEntropyLoss(aux=True, aux_weight=weight)(
            a, b, target), main, aux)

    def ours(weight):
        return _grads(lambda a, b: segmentation_loss((a, b), target, weight).mean(), main, aux)
    for got, want in zip(ours(1.0), theirs(1.0)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-8)
    (main04, aux04), (their_main, their_aux) = ours(0.4), theirs(0.4)
    np.testing.assert_allclose(main04, their_main, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(aux04, 0.4 * their_aux, rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(their_aux, theirs(1.0)[1])         # their weight: inert
    assert np.abs(main04).max() > 1e-3 and not main04[2].any()       # no label, no gradient
