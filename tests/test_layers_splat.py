"""SplitAttentionConv (:mod:`resnest.gluon.layers.splat`) on its own: hybridized equals
imperative for every radix and cardinality, and with radix 2 its output is a convex mix of the
two splits."""
import mxnet as mx
import numpy as np
import pytest

from conftest import randomize_bn
from resnest.gluon import SplitAttentionConv


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
