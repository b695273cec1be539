"""DropBlock (Ghiasi et al. 2018): drop contiguous square regions of a feature map in training."""
from mxnet.gluon import nn

__all__ = ["DropBlock", "set_drop_prob", "DROPBLOCK_MODES"]

DROPBLOCK_MODES = ("batch", "sample")


class DropBlock(nn.HybridBlock):
    """Zero ``block_size`` x ``block_size`` squares with overall probability ``drop_prob``.

    Two ways to draw the mask:

    * ``mode='batch'`` (default): the authors' published training (resnest 0.0.5
      ``DropBlock``). One mask of shape ``(1, C, H, W)`` per call, shared by every sample of
      the batch and drawn independently per channel; block centres fall anywhere (blocks at
      the border are clipped) with rate ``drop_prob * H * W / (k^2 (H - k + 1) (W - k + 1))``;
      the kept activations are scaled by ``C * H * W / kept``.
    * ``mode='sample'``: one mask per sample, shared by its channels, block centres only where
      a whole block fits, the rate set so the expected dropped fraction is ``drop_prob``, and
      each sample rescaled by its own kept fraction.

    Unlike the authors' layer, nothing here depends on the input size (one block serves any
    resolution), and the block is the identity outside training, hybridized or not: the
    training/inference switch is read from a ``Dropout`` operator, which MXNet runs in the
    graph's current mode. A map smaller than the block (no place where a block fits) passes
    unchanged.

    Parameters
    ----------
    drop_prob : float
        Fraction of activations to drop. Change it with :func:`set_drop_prob`.
    block_size : int
        Side of the dropped squares (odd).
    mode : {'batch', 'sample'}
        How the mask is shared, see above.
    """

    def __init__(self, drop_prob=0.1, block_size=3, mode="batch", **kwargs):
        super().__init__(**kwargs)
        if block_size % 2 != 1:
            raise ValueError(f"DropBlock block_size must be odd, got {block_size}.")
        if mode not in DROPBLOCK_MODES:
            raise ValueError(f"DropBlock mode must be one of {DROPBLOCK_MODES}, got {mode!r}.")
        self.drop_prob = float(drop_prob)
        self.block_size = block_size
        self.mode = mode

    def hybrid_forward(self, F, x):
        k, pad = self.block_size, self.block_size // 2
        if self.mode == "batch":
            mask_like = F.slice_axis(x, axis=0, begin=0, end=1)               # (1, C, H, W)
        else:
            mask_like = F.slice_axis(x, axis=1, begin=0, end=1)               # (B, 1, H, W)
        ones = F.ones_like(F.slice_axis(mask_like, axis=1, begin=0, end=1))   # (., 1, H, W)
        # 1 where a whole block fits: a zero-padded average of ones is 1 only there.
        cover = F.Pooling(ones, kernel=(k, k), pool_type="avg", stride=(1, 1), pad=(pad, pad),
                          count_include_pad=True)
        valid = cover >= 1 - 1e-3
        area = F.sum(ones, axis=(1, 2, 3), keepdims=True)                   # H * W
        fits = F.sum(valid, axis=(1, 2, 3), keepdims=True)                  # (H-k+1)(W-k+1)
        # Seed rate so that the expected dropped fraction is drop_prob (paper, eq. 1).
        gamma = F.broadcast_div(area, fits + 1e-6) * (self.drop_prob / (k * k))
        # Dropout(p=0.5) of ones is 0 or 2 in training and 1 in inference: |d - 1| is the mode.
        training = F.abs(F.Dropout(F.ones_like(gamma), p=0.5) - 1) * (fits > 0)
        seeds = F.broadcast_lesser(F.random.uniform_like(mask_like), gamma)
        if self.mode == "sample":
            seeds = seeds * valid
        seeds = F.broadcast_mul(seeds, training)
        dropped = F.Pooling(seeds, kernel=(k, k), pool_type="max", stride=(1, 1),
                            pad=(pad, pad))
        keep = 1 - dropped
        numel = F.sum(F.ones_like(mask_like), axis=(1, 2, 3), keepdims=True)
        scale = F.broadcast_div(numel, F.maximum(F.sum(keep, axis=(1, 2, 3), keepdims=True), 1))
        return F.broadcast_mul(x, F.broadcast_mul(keep, scale))


def set_drop_prob(net, drop_prob):
    """Set the probability of every :class:`DropBlock` in ``net``; returns how many were set.

    The probability is a constant of the traced graph, so the cached graphs of ``net`` are
    dropped and re-traced on the next call; parameters, optimizer state and the network object
    stay as they are. Calling it with an unchanged value costs nothing.
    """
    blocks = []
    net.apply(lambda b: blocks.append(b) if isinstance(b, DropBlock) else None)
    if blocks and any(b.drop_prob != float(drop_prob) for b in blocks):
        for b in blocks:
            b.drop_prob = float(drop_prob)
        net.apply(lambda b: b._clear_cached_op() if isinstance(b, nn.HybridBlock) else None)
    return len(blocks)
