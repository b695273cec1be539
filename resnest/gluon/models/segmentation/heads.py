"""The segmentation heads of GluonCV's DeepLabV3 and FCN, for any backbone width and input size.

Compatibility contract: the child names and sequence indices below are the structural names of
GluonCV's published ``deeplab_resnest*_ade`` files (``head.aspp.concurent.4.gap.1.weight``,
``head.block.4.bias``, ``auxlayer.block.0.weight``, ...). Layers without parameters (pooling,
ReLU, dropout) keep their places in the sequences, because they shift the indices of the layers
after them. ``concurent`` is GluonCV's spelling; renaming it breaks loading those files.

Unlike GluonCV's, nothing here is built for one input size: GluonCV's ASPP image-pooling branch
bilinearly resizes its 1x1 map to a ``height // 8`` x ``width // 8`` fixed at construction (60x60
for crop 480), so its model runs only at that size. Resizing a 1x1 map bilinearly repeats its
one value, so here it is broadcast to the shape of the other branches: the same numbers at
every size, and an ONNX ``Expand``.
"""
from mxnet.gluon import nn
from mxnet.gluon.nn import BatchNorm

__all__ = ["ASPP", "ASPPPooling", "DeepLabHead", "FCNHead"]


def _conv_bn_relu(in_channels, channels, kernel_size, dilation, norm_layer, norm_kwargs):
    """Conv (no bias) -> norm -> ReLU as children 0, 1, 2 (GluonCV's ASPP branches)."""
    seq = nn.HybridSequential()
    with seq.name_scope():
        seq.add(nn.Conv2D(channels, kernel_size, padding=dilation if kernel_size == 3 else 0,
                          dilation=dilation, use_bias=False, in_channels=in_channels),
                norm_layer(in_channels=channels, **norm_kwargs),
                nn.Activation("relu"))
    return seq


def _classifier(in_channels, channels, classes, norm_layer, norm_kwargs, dropout=0.1):
    """3x3 conv -> norm -> ReLU -> dropout -> 1x1 conv with bias (children 0..4): the end of
    GluonCV's DeepLab head and the whole of its FCN head."""
    seq = nn.HybridSequential()
    with seq.name_scope():
        seq.add(nn.Conv2D(channels, 3, padding=1, use_bias=False, in_channels=in_channels),
                norm_layer(in_channels=channels, **norm_kwargs),
                nn.Activation("relu"),
                nn.Dropout(dropout),
                nn.Conv2D(classes, 1, in_channels=channels))
    return seq


class FCNHead(nn.HybridBlock):
    """GluonCV's FCN head: 3x3 conv to ``in_channels // 4`` -> BN -> ReLU -> dropout 0.1 ->
    1x1 conv to ``classes``, at the resolution of its input.

    Parameters
    ----------
    in_channels : int
        Channels of the feature map it reads.
    classes : int
        Output channels (one score per class).
    channels : int, optional
        Width of the 3x3 conv; default ``in_channels // 4`` (GluonCV's).
    norm_layer, norm_kwargs :
        Normalisation layer and its arguments (e.g. SyncBatchNorm).
    """

    def __init__(self, in_channels, classes, channels=None, norm_layer=BatchNorm,
                 norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        channels = channels or in_channels // 4
        with self.name_scope():
            self.block = _classifier(in_channels, channels, classes, norm_layer,
                                     dict(norm_kwargs or {}))

    def hybrid_forward(self, F, x):
        return self.block(x)


class ASPPPooling(nn.HybridBlock):
    """The image-pooling branch of ASPP: global average -> 1x1 conv -> BN -> ReLU, repeated
    over the spatial shape of ``like`` (any size; see the module notes)."""

    def __init__(self, in_channels, channels, norm_layer=BatchNorm, norm_kwargs=None,
                 **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.gap = nn.HybridSequential()
            with self.gap.name_scope():
                self.gap.add(nn.GlobalAvgPool2D(),
                             nn.Conv2D(channels, 1, use_bias=False, in_channels=in_channels),
                             norm_layer(in_channels=channels, **dict(norm_kwargs or {})),
                             nn.Activation("relu"))

    def hybrid_forward(self, F, x, like):
        """``like`` has the output's shape (N, channels, H, W): another ASPP branch."""
        return F.broadcast_like(self.gap(x), like)


class ASPP(nn.HybridBlock):
    """Atrous spatial pyramid pooling (DeepLabV3): a 1x1 conv, three dilated 3x3 convs and the
    image-pooling branch, concatenated, then projected by 1x1 conv -> BN -> ReLU -> dropout 0.5.

    Parameters
    ----------
    in_channels : int
        Channels of the backbone map (2048 for ResNeSt-50 and deeper).
    channels : int
        Width of every branch and of the output (GluonCV: 256).
    rates : tuple of 3 int
        Dilations of the 3x3 branches (GluonCV: 12, 24, 36 at output stride 8).
    norm_layer, norm_kwargs :
        Normalisation layer and its arguments.
    """

    def __init__(self, in_channels, channels=256, rates=(12, 24, 36), norm_layer=BatchNorm,
                 norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        if len(rates) != 3:
            raise ValueError(f"ASPP takes three atrous rates, got {tuple(rates)}.")
        norm_kwargs = dict(norm_kwargs or {})
        with self.name_scope():
            # GluonCV's HybridConcurrent, here a plain container: the branches are called one
            # by one because the pooling branch takes a second input.
            self.concurent = nn.HybridSequential()
            with self.concurent.name_scope():
                self.concurent.add(_conv_bn_relu(in_channels, channels, 1, 1, norm_layer,
                                                 norm_kwargs))
                for rate in rates:
                    self.concurent.add(_conv_bn_relu(in_channels, channels, 3, rate,
                                                     norm_layer, norm_kwargs))
                self.concurent.add(ASPPPooling(in_channels, channels, norm_layer, norm_kwargs))
            self.project = nn.HybridSequential()
            with self.project.name_scope():
                self.project.add(nn.Conv2D(channels, 1, use_bias=False,
                                           in_channels=5 * channels),
                                 norm_layer(in_channels=channels, **norm_kwargs),
                                 nn.Activation("relu"),
                                 nn.Dropout(0.5))

    def hybrid_forward(self, F, x):
        branches = [self.concurent[i](x) for i in range(4)]
        branches.append(self.concurent[4](x, branches[0]))
        return self.project(F.concat(*branches, dim=1))


class DeepLabHead(nn.HybridBlock):
    """GluonCV's DeepLabV3 head: :class:`ASPP` (``aspp``) then 3x3 conv -> BN -> ReLU ->
    dropout 0.1 -> 1x1 conv to ``classes`` (``block``), at the resolution of its input.

    Parameters
    ----------
    in_channels : int
        Channels of the backbone map.
    classes : int
        Output channels.
    channels : int
        Width of ASPP and of the 3x3 conv (GluonCV: 256).
    rates : tuple of 3 int
        ASPP dilations.
    norm_layer, norm_kwargs :
        Normalisation layer and its arguments.
    """

    def __init__(self, in_channels, classes, channels=256, rates=(12, 24, 36),
                 norm_layer=BatchNorm, norm_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        with self.name_scope():
            self.aspp = ASPP(in_channels, channels, rates, norm_layer, norm_kwargs)
            self.block = _classifier(channels, channels, classes, norm_layer,
                                     dict(norm_kwargs or {}))

    def hybrid_forward(self, F, x):
        return self.block(self.aspp(x))
