"""The per-region heads: GluonCV's box head of the FPN ResNeSt detectors and its mask head.

Box head (``predefined_models.py``, the ``faster_rcnn_fpn_syncbn_resnest*`` box_features):
``convs`` x (3x3 conv without bias, norm, ReLU) at the pooled 7x7, then a Dense of ``units``
with ReLU. Mask head (``rcnn/mask_rcnn/mask_rcnn.py``, ``Mask``): ``convs`` x (3x3 conv,
optional norm, ReLU), a 2x2 stride-2 transposed conv (optional norm) and ReLU, then a 1x1 conv
with one map per class.
"""
import mxnet as mx
from mxnet.gluon import nn

__all__ = ["BoxHead", "MaskHead"]

# Kaiming-normal on fan-out, GluonCV's mask-head initialiser; the box-head convs use it too.
_CONV_INIT = mx.init.Xavier(rnd_type="gaussian", factor_type="out", magnitude=2)


class _ConvStack(nn.HybridBlock):
    """3x3 convs ``conv{i}``, each with an optional norm ``bn{i}``, each then ReLU."""

    def _add_convs(self, convs, in_channels, channels, norm_layer, norm_kwargs, use_bias):
        self._convs, self._norm = convs, norm_layer is not None
        for i in range(convs):
            setattr(self, f"conv{i}", nn.Conv2D(channels, 3, padding=1, use_bias=use_bias,
                                                in_channels=in_channels if i == 0 else channels,
                                                weight_initializer=_CONV_INIT))
            if self._norm:
                setattr(self, f"bn{i}", norm_layer(in_channels=channels, **(norm_kwargs or {})))
        return channels if convs else in_channels

    def _run_convs(self, F, x):
        for i in range(self._convs):
            x = getattr(self, f"conv{i}")(x)
            if self._norm:
                x = getattr(self, f"bn{i}")(x)
            x = F.relu(x)
        return x


class BoxHead(_ConvStack):
    """``(R, in_channels, h, w)`` pooled regions -> ``(R, units)`` features.

    Children ``conv{i}`` and ``bn{i}`` (i < ``convs``; ``bn{i}`` only with a norm layer, the
    convs then have no bias) and ``fc`` (Dense, Normal(0.01) as GluonCV's).
    """

    def __init__(self, in_channels, roi_size, convs=4, channels=256, units=1024,
                 norm_layer=None, norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            cin = self._add_convs(convs, in_channels, channels, norm_layer, norm_kwargs,
                                  use_bias=norm_layer is None)
            self.fc = nn.Dense(units, in_units=cin * roi_size[0] * roi_size[1],
                               weight_initializer=mx.init.Normal(0.01))

    def hybrid_forward(self, F, x):
        return F.relu(self.fc(self._run_convs(F, x)))


class MaskHead(_ConvStack):
    """``(R, in_channels, h, w)`` pooled regions -> ``(R, classes, 2h, 2w)`` mask logits.

    Children ``conv{i}`` (+ ``bn{i}``; the convs keep their bias, as GluonCV's), ``deconv``
    (+ ``deconv_bn``) and ``mask``.
    """

    def __init__(self, in_channels, classes, convs=4, channels=256, norm_layer=None,
                 norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            cin = self._add_convs(convs, in_channels, channels, norm_layer, norm_kwargs,
                                  use_bias=True)
            self.deconv = nn.Conv2DTranspose(channels, 2, strides=2, in_channels=cin,
                                             weight_initializer=_CONV_INIT)
            self.deconv_bn = (norm_layer(in_channels=channels, **(norm_kwargs or {}))
                              if norm_layer is not None else None)
            self.mask = nn.Conv2D(classes, 1, in_channels=channels, weight_initializer=_CONV_INIT)

    def hybrid_forward(self, F, x):
        x = self.deconv(self._run_convs(F, x))
        if self.deconv_bn is not None:
            x = self.deconv_bn(x)
        return self.mask(F.relu(x))
