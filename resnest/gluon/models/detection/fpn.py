"""The feature pyramid (Lin et al., 2017) as GluonCV builds it for its R-CNN models
(``nn/feature.py``, ``FPNFeatureExpander`` with ``use_1x1, use_upsample, use_elewadd, use_p6,
p6_conv``), fed directly by the backbone's stage outputs.

From ``C2 .. C5`` (strides 4 .. 32): a 1x1 lateral convolution per stage; top-down, the merged
map of the level above is upsampled (nearest, x2), cropped to the lateral's size and added to
it; a 3x3 convolution on each merged map gives ``P2 .. P5``; ``P6`` is a 3x3 stride-2
convolution of the top lateral. No activation anywhere. With a ``norm_layer`` every
convolution is followed by it and has no bias (GluonCV's published models); without one the
convolutions have a bias.
"""
import mxnet as mx
from mxnet.gluon import nn

__all__ = ["ConvNorm", "FPN", "FPN_NORM_KWARGS"]

# GluonCV's pyramid normalises with the symbol op mx.sym.contrib.SyncBatchNorm at its defaults:
# eps 1e-3 and fix_gamma=True (gamma is held at 1; the stored gamma is never read).
FPN_NORM_KWARGS = {"epsilon": 1e-3, "scale": False}

# GluonCV's FPN convolutions: Xavier, uniform, fan-in, magnitude 1.
_FPN_INIT = mx.init.Xavier(rnd_type="uniform", factor_type="in", magnitude=1.0)


class ConvNorm(nn.HybridBlock):
    """A convolution ``conv`` followed by ``bn`` (a norm layer), or by nothing when
    ``norm_layer`` is None, in which case the convolution has a bias."""

    def __init__(self, channels, kernel_size, in_channels, strides=1, norm_layer=None,
                 norm_kwargs=None, weight_initializer=None, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.conv = nn.Conv2D(channels, kernel_size, strides, kernel_size // 2,
                                  use_bias=norm_layer is None, in_channels=in_channels,
                                  weight_initializer=weight_initializer)
            self.bn = (norm_layer(in_channels=channels, **(norm_kwargs or {}))
                       if norm_layer is not None else None)

    def hybrid_forward(self, F, x):
        x = self.conv(x)
        return self.bn(x) if self.bn is not None else x


class FPN(nn.HybridBlock):
    """Feature pyramid: ``(C2, C3, C4, C5) -> [P2, P3, P4, P5, P6]`` of ``channels`` each.

    Parameters
    ----------
    in_channels : sequence of int
        Channels of the backbone maps, lowest level first (ResNeSt: 256, 512, 1024, 2048).
    channels : int
        Channels of every pyramid level.
    norm_layer, norm_kwargs :
        Normalisation after each convolution (None: none, convolutions with bias).
        ``norm_kwargs`` default to :data:`FPN_NORM_KWARGS` (GluonCV's).

    Attributes ``lateral{k}``, ``output{k}`` (k = 2..5) and ``p6`` are :class:`ConvNorm`.
    """

    def __init__(self, in_channels=(256, 512, 1024, 2048), channels=256, norm_layer=None,
                 norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        self._levels = list(range(2, 2 + len(in_channels)))
        kw = dict(norm_layer=norm_layer, weight_initializer=_FPN_INIT,
                  norm_kwargs=FPN_NORM_KWARGS if norm_kwargs is None else norm_kwargs)
        with self.name_scope():
            for level, cin in zip(self._levels, in_channels):
                setattr(self, f"lateral{level}", ConvNorm(channels, 1, cin, **kw))
                setattr(self, f"output{level}", ConvNorm(channels, 3, channels, **kw))
            self.p6 = ConvNorm(channels, 3, channels, strides=2, **kw)

    def hybrid_forward(self, F, *feats):
        top = self._levels[-1]
        merged = getattr(self, f"lateral{top}")(feats[-1])
        outs = [self.p6(merged), getattr(self, f"output{top}")(merged)]
        for level, c in zip(self._levels[-2::-1], feats[-2::-1]):
            lateral = getattr(self, f"lateral{level}")(c)
            up = F.UpSampling(merged, scale=2, sample_type="nearest")
            merged = lateral + F.slice_like(up, lateral, axes=(2, 3))
            outs.append(getattr(self, f"output{level}")(merged))
        return outs[:0:-1] + outs[:1]                  # P2 .. P5, then P6
