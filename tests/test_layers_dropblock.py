"""DropBlock (:mod:`resnest.gluon.layers.dropblock`) on its own: the authors' layer's statistics
in batch mode, per-sample masks in sample mode, square blocks at any resolution, an identity in
inference, and its probability changed in place in a hybridized network."""
import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd

from conftest import authors_package
from resnest.gluon import DropBlock, get_model, set_drop_prob


def _train(block, x):
    with autograd.record(train_mode=True):
        return block(x).asnumpy()


def _draws(block, shape, n):
    """``n`` training outputs of ``block`` on ones of ``shape``."""
    return np.stack([_train(block, mx.nd.ones(shape)) for _ in range(n)])


@pytest.mark.parametrize("size", [14, 7])
def test_batch_mode_matches_the_authors_dropblock(size):
    """Default mode against the authors' layer (resnest 0.0.5 dropblock.py), same p and map:
    one mask for the whole batch, drawn per channel; the same drop rate and the same
    per-position drop frequency (block centres anywhere, clipped at the border); kept values
    scaled by numel / kept."""
    theirs = authors_package("dropblock").DropBlock(0.1, 3, 8, size, size)
    theirs.initialize()
    ours = DropBlock(0.1, 3)
    ours.hybridize()
    shape = (4, 8, size, size)
    a, b = _draws(theirs, shape, 300), _draws(ours, shape, 300)
    for out in (a, b):
        assert (out[:, :1] == out).all()                        # shared by the batch
        assert (out[:, 0, 0] != out[:, 0, 1]).any()             # not by the channels
        kept = out[:, 0] > 0
        np.testing.assert_allclose(out[:, 0].max(axis=(1, 2, 3)),
                                   kept[0].size / kept.sum(axis=(1, 2, 3)), rtol=1e-5)
    rate_a, rate_b = (a == 0).mean(), (b == 0).mean()
    assert abs(rate_a - rate_b) < 0.15 * rate_a, (rate_a, rate_b)
    freq_a, freq_b = (a == 0).mean(axis=(0, 1, 2)), (b == 0).mean(axis=(0, 1, 2))
    assert np.abs(freq_a - freq_b).max() < 0.3 * freq_a.max(), (freq_a, freq_b)
    # The other mode draws no centre where a block is cut: its corners drop far less often.
    per_sample = _draws(DropBlock(0.1, 3, mode="sample"), shape, 300)
    corner = (per_sample == 0).mean(axis=(0, 1, 2))[0, 0]
    assert corner < 0.5 * freq_a[0, 0]


@pytest.mark.parametrize("hybrid", [False, True])
def test_sample_mode_statistics(hybrid):
    block = DropBlock(0.2, 3, mode="sample")
    if hybrid:
        block.hybridize()
    out = _train(block, mx.nd.ones((64, 4, 16, 16)))
    assert abs((out == 0).mean() - 0.2) < 0.05
    # One mask per sample, shared by its channels; different between samples.
    assert (out[:, :1] == out).all()
    assert len({m.tobytes() for m in (out[:, 0] == 0)}) > 60
    # Kept activations are rescaled so each sample keeps its sum.
    np.testing.assert_allclose(out.sum(axis=(1, 2, 3)), 4 * 16 * 16, rtol=1e-4)


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_identity_in_inference_and_on_maps_smaller_than_a_block(mode):
    block = DropBlock(0.5, 3, mode=mode)
    block.hybridize()
    _train(block, mx.nd.ones((2, 3, 8, 8)))                     # traced in training first
    y = mx.nd.random.uniform(shape=(2, 3, 8, 8))
    np.testing.assert_array_equal(block(y).asnumpy(), y.asnumpy())
    # A 2x2 map has nowhere a 3x3 block fits: it passes unchanged (the authors' divides by 0).
    assert (_train(block, mx.nd.ones((8, 2, 2, 2))) == 1).all()


def test_blocks_are_squares_and_the_size_is_read_at_run_time():
    block = DropBlock(0.1, 3, mode="sample")
    block.hybridize()
    for size in (7, 20, 33):                                   # one block, any resolution
        rate = (_train(block, mx.nd.ones((32, 1, size, size))) == 0).mean()
        assert 0.05 < rate < 0.15, size
    # Every dropped pixel lies in some fully dropped 3x3 square.
    mask = _train(block, mx.nd.ones((16, 1, 20, 20)))[:, 0] == 0
    full = np.zeros_like(mask)
    for i in range(1, 19):
        for j in range(1, 19):
            square = mask[:, i - 1:i + 2, j - 1:j + 2].all(axis=(1, 2))
            full[:, i - 1:i + 2, j - 1:j + 2] |= square[:, None, None]
    assert mask.any() and (full == mask).all()


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
    assert (_train(block, mx.nd.ones((16, 2, 12, 12))) == 0).mean() > 0.3
