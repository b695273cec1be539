"""SplitAttentionConv and DropBlock on their own."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

from conftest import randomize_bn
from resnest.gluon import DropBlock, SplitAttentionConv, get_model, set_drop_prob


@pytest.mark.parametrize("radix,groups", [(1, 1), (2, 1), (4, 1), (1, 2), (2, 2), (4, 2), (3, 2)])
def test_split_attention_hybrid_equals_imperative(radix, groups):
    layer = SplitAttentionConv(24, groups=groups, radix=radix, in_channels=24)
    layer.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(shape=(3, 24, 9, 7))
    randomize_bn(layer, x)
    want = layer(x).asnumpy()
    assert want.shape == (3, 24, 9, 7)
    layer.hybridize()
    np.testing.assert_allclose(layer(x).asnumpy(), want, rtol=1e-5, atol=1e-6)


def test_split_attention_rejects_indivisible_groups():
    with pytest.raises(ValueError, match="divisible"):
        SplitAttentionConv(16, groups=4, radix=3, in_channels=16)


def test_split_attention_is_a_convex_mix_of_the_splits():
    # With radix 2 the output is a*s0 + (1-a)*s1 per channel: it lies between the two splits.
    layer = SplitAttentionConv(8, radix=2, in_channels=8)
    layer.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(shape=(2, 8, 5, 5))
    out = layer(x).asnumpy()
    act = mx.nd.relu(layer.bn(layer.conv(x))).asnumpy()
    lo, hi = np.minimum(act[:, :8], act[:, 8:]), np.maximum(act[:, :8], act[:, 8:])
    assert (out >= lo - 1e-5).all() and (out <= hi + 1e-5).all()
    assert not np.allclose(out, act[:, :8])


def _drop_fraction(block, x):
    with autograd.record(train_mode=True):
        out = block(x)
    return (out.asnumpy() == 0).mean(), out


@pytest.mark.parametrize("hybrid", [False, True])
def test_dropblock_statistics(hybrid):
    block = DropBlock(0.2, 3)
    if hybrid:
        block.hybridize()
    x = mx.nd.ones((64, 4, 16, 16))
    rate, out = _drop_fraction(block, x)
    assert abs(rate - 0.2) < 0.05
    out = out.asnumpy()
    # One mask per sample, shared by its channels; different between samples.
    assert (out[:, :1] == out).all()
    assert len({m.tobytes() for m in (out[:, 0] == 0)}) > 60
    # Kept activations are rescaled so each sample keeps its sum.
    np.testing.assert_allclose(out.sum(axis=(1, 2, 3)), 4 * 16 * 16, rtol=1e-4)
    # Inference: exactly the identity.
    y = mx.nd.random.uniform(shape=(2, 3, 8, 8))
    np.testing.assert_array_equal(block(y).asnumpy(), y.asnumpy())


def test_dropblock_is_size_agnostic_and_drops_squares():
    block = DropBlock(0.1, 3)
    block.hybridize()
    for size in (7, 20, 33):
        rate, out = _drop_fraction(block, mx.nd.ones((32, 1, size, size)))
        assert 0.05 < rate < 0.15, size
    # A map smaller than the block has nowhere a block fits: it passes unchanged.
    assert _drop_fraction(block, mx.nd.ones((8, 2, 2, 2)))[0] == 0
    # A single seed drops a whole 3x3 square: every zero has a full zero 3x3 around some pixel.
    mask = out.asnumpy()[:, 0] == 0
    dropped = np.argwhere(mask)
    n, i, j = dropped[0]
    assert mask[n, max(i - 2, 0):i + 3, max(j - 2, 0):j + 3].sum() >= 4


def test_set_drop_prob_changes_a_hybridized_network_in_place():
    net = get_model("resnest_tiny", classes=3, dropblock_prob=0.1)
    net.initialize()
    net.hybridize()
    x = mx.nd.random.uniform(shape=(2, 3, 32, 32))
    with autograd.record():
        net(x)
    assert set_drop_prob(net, 0.0) == 6                    # 3 per block in stages 3 and 4
    block = net.layer3[0].dropblock1
    with autograd.record():
        before = net(x).asnumpy()
        again = net(x).asnumpy()
    np.testing.assert_array_equal(before, again)            # p = 0: nothing random left
    set_drop_prob(net, 0.5)
    assert block.drop_prob == 0.5
    rate, _ = _drop_fraction(block, mx.nd.ones((16, 2, 12, 12)))
    assert rate > 0.3
