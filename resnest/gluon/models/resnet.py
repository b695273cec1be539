"""One generic ResNet-D / ResNeSt HybridBlock, configured by a small frozen dataclass.

Compatibility contract: the attribute names below (``conv1``, ``bn1``, ``layer1``..``layer4``,
``fc``; in each block ``conv1``, ``bn1``, ``conv2``, ``conv3``, ``bn3``, ``downsample``; the
indices inside the ``conv1`` stem and ``downsample`` sequences) are the structural names of the
published ``.params`` files. Renaming or reordering any of them breaks loading those weights;
the manifest tests guard it.
"""
import numbers
from dataclasses import dataclass
from typing import Tuple

from mxnet.gluon import nn
from mxnet.gluon.nn import BatchNorm

from ..layers import DropBlock, SplitAttentionConv
from ..utils.errors import UserError

__all__ = ["ResNetConfig", "ResNetTrunk", "ResNet", "Bottleneck"]


@dataclass(frozen=True)
class ResNetConfig:
    """Architecture of one ResNeSt variant (the published settings are in ``resnest.py``)."""

    layers: Tuple[int, int, int, int]
    radix: int = 2
    cardinality: int = 1
    bottleneck_width: int = 64
    stem_width: int = 32
    avd_first: bool = False
    final_drop: float = 0.0
    channels: Tuple[int, int, int, int] = (64, 128, 256, 512)
    name_prefix: str = "resnest_"


class Bottleneck(nn.HybridBlock):
    """ResNeSt bottleneck: 1x1 -> split-attention 3x3 -> 1x1, expansion 4.

    A strided block moves its stride to a 3x3 average pool ("avd") after the split-attention
    conv, or before it when ``avd_first``. DropBlock, when enabled, follows ``bn1``, the
    split-attention conv and ``bn3``.
    """

    expansion = 4

    def __init__(self, channels, in_channels, cfg, strides=1, dilation=1, previous_dilation=1,
                 downsample=None, norm_layer=BatchNorm, norm_kwargs=None, last_gamma=False,
                 dropblock_prob=0.0, dropblock_mode="batch", **kwargs):
        super().__init__(**kwargs)
        norm_kwargs = norm_kwargs or {}
        width = int(channels * cfg.bottleneck_width / 64) * cfg.cardinality
        self._avd = strides > 1 or previous_dilation != dilation
        self._avd_first = cfg.avd_first
        with self.name_scope():
            self.conv1 = nn.Conv2D(width, 1, use_bias=False, in_channels=in_channels)
            self.bn1 = norm_layer(in_channels=width, **norm_kwargs)
            self.conv2 = SplitAttentionConv(
                width, 3, strides=1 if self._avd else strides, padding=dilation,
                dilation=dilation, groups=cfg.cardinality, radix=cfg.radix, in_channels=width,
                norm_layer=norm_layer, norm_kwargs=norm_kwargs)
            self.avd_layer = nn.AvgPool2D(3, strides, padding=1) if self._avd else None
            self.conv3 = nn.Conv2D(channels * 4, 1, use_bias=False, in_channels=width)
            gamma_init = "zeros" if last_gamma else "ones"
            self.bn3 = norm_layer(in_channels=channels * 4, gamma_initializer=gamma_init,
                                  **norm_kwargs)
            self.downsample = downsample
            drop = dropblock_prob > 0
            self.dropblock1 = DropBlock(dropblock_prob, 3, dropblock_mode) if drop else None
            self.dropblock2 = DropBlock(dropblock_prob, 3, dropblock_mode) if drop else None
            self.dropblock3 = DropBlock(dropblock_prob, 3, dropblock_mode) if drop else None

    def hybrid_forward(self, F, x):
        out = self.bn1(self.conv1(x))
        if self.dropblock1 is not None:
            out = self.dropblock1(out)
        out = F.Activation(out, act_type="relu")
        if self._avd and self._avd_first:
            out = self.avd_layer(out)
        out = self.conv2(out)
        if self.dropblock2 is not None:
            out = self.dropblock2(out)
        if self._avd and not self._avd_first:
            out = self.avd_layer(out)
        out = self.bn3(self.conv3(out))
        if self.dropblock3 is not None:
            out = self.dropblock3(out)
        residual = x if self.downsample is None else self.downsample(x)
        return F.Activation(out + residual, act_type="relu")


# Stage (strides, dilation) of layer1..4 for output stride 32, 16 (dilation=2) or 8 (dilation=4).
STAGE_PLANS = {1: ((1, 1), (2, 1), (2, 1), (2, 1)),
               2: ((1, 1), (2, 1), (2, 1), (1, 2)),
               4: ((1, 1), (2, 1), (1, 2), (1, 4))}


class ResNetTrunk(nn.HybridBlock):
    """The convolutional body shared by the classifier (:class:`ResNet`) and the backbone
    (:class:`~resnest.gluon.models.features.ResNetFeatures`): the deep stem ``conv1``, ``bn1``,
    ``maxpool`` and the stages ``layer1`` .. ``layer{num_stages}``.

    Parameters
    ----------
    cfg : ResNetConfig
        The architecture.
    dilated : bool
        Output stride 8 (stages 3 and 4 dilated by 2 and 4) for segmentation backbones.
    dilation : int
        1 (none), 2 (stage 4 dilated; output stride 16) or 4 (same as ``dilated``).
    norm_layer, norm_kwargs :
        Normalisation layer and its arguments, e.g. ``mxnet.gluon.contrib.nn.SyncBatchNorm``.
    use_global_stats : bool
        Freeze BatchNorm statistics (fine-tuning with small batches).
    last_gamma : bool
        Initialise the last BN gamma of every block to zero.
    dropblock_prob : float
        DropBlock probability in stages 3 and 4 (0 builds no DropBlock layer).
    dropblock_mode : {'batch', 'sample'}
        How DropBlock draws its mask: 'batch' as the authors' published training, 'sample'
        one mask per sample (see :class:`~resnest.gluon.layers.DropBlock`).
    num_stages : int
        Build only ``layer1`` .. ``layer{num_stages}`` (a backbone needing fewer stages).
    """

    def __init__(self, cfg, dilated=False, dilation=1, norm_layer=BatchNorm, norm_kwargs=None,
                 use_global_stats=False, last_gamma=False, dropblock_prob=0.0,
                 dropblock_mode="batch", num_stages=4, **kwargs):
        kwargs.setdefault("prefix", cfg.name_prefix)
        super().__init__(**kwargs)
        if dilated:
            dilation = 4
        if dilation not in (1, 2, 4):
            raise ValueError(f"dilation must be 1, 2 or 4, got {dilation}.")
        norm_kwargs = dict(norm_kwargs or {})
        if use_global_stats:
            norm_kwargs["use_global_stats"] = True
        block_kw = dict(cfg=cfg, norm_layer=norm_layer, norm_kwargs=norm_kwargs,
                        last_gamma=last_gamma, dropblock_mode=dropblock_mode)
        stem = cfg.stem_width
        self.config = cfg                              # the architecture, for name maps
        self.stage_plan = STAGE_PLANS[dilation]
        self._in_channels = stem * 2
        with self.name_scope():
            self.conv1 = nn.HybridSequential(prefix="conv1")
            with self.conv1.name_scope():
                for i, (cin, cout, s) in enumerate([(3, stem, 2), (stem, stem, 1),
                                                    (stem, stem * 2, 1)]):
                    self.conv1.add(nn.Conv2D(cout, 3, s, 1, use_bias=False, in_channels=cin))
                    if i < 2:
                        self.conv1.add(norm_layer(in_channels=cout, **norm_kwargs))
                        self.conv1.add(nn.Activation("relu"))
            self.bn1 = norm_layer(in_channels=stem * 2, **norm_kwargs)
            self.maxpool = nn.MaxPool2D(pool_size=3, strides=2, padding=1)
            for i, (blocks, width, (strides, dil)) in enumerate(
                    zip(cfg.layers[:num_stages], cfg.channels, self.stage_plan)):
                drop = dropblock_prob if i >= 2 else 0.0
                layer = self._make_layer(i + 1, blocks, width, strides, dil, drop, block_kw)
                setattr(self, f"layer{i + 1}", layer)

    def _make_layer(self, index, blocks, channels, strides, dilation, dropblock_prob, block_kw):
        out_channels = channels * Bottleneck.expansion
        norm_layer, norm_kwargs = block_kw["norm_layer"], block_kw["norm_kwargs"]
        layer = nn.HybridSequential(prefix=f"layers{index}_")
        with layer.name_scope():
            downsample = None
            if strides != 1 or self._in_channels != out_channels:
                downsample = nn.HybridSequential(prefix="down%d_" % index)
                with downsample.name_scope():
                    pool = strides if dilation == 1 else 1
                    downsample.add(nn.AvgPool2D(pool, pool, ceil_mode=True,
                                                count_include_pad=False))
                    downsample.add(nn.Conv2D(out_channels, 1, use_bias=False,
                                             in_channels=self._in_channels))
                    downsample.add(norm_layer(in_channels=out_channels, **norm_kwargs))
            # The first block of a dilated stage runs at half the stage's dilation (4 -> 2).
            first_dilation = 2 if dilation == 4 else 1
            layer.add(Bottleneck(channels, self._in_channels, strides=strides,
                                 dilation=first_dilation, previous_dilation=dilation,
                                 downsample=downsample, dropblock_prob=dropblock_prob,
                                 **block_kw))
            self._in_channels = out_channels
            for _ in range(1, blocks):
                layer.add(Bottleneck(channels, out_channels, dilation=dilation,
                                     previous_dilation=dilation,
                                     dropblock_prob=dropblock_prob, **block_kw))
        return layer

    def stem(self, F, x):
        """The deep stem before the max-pool: ``relu(bn1(conv1(x)))``, stride 2."""
        return F.Activation(self.bn1(self.conv1(x)), act_type="relu")


class ResNet(ResNetTrunk):
    """ResNet-D with a deep stem and average-pool shortcuts, built from :class:`ResNetConfig`:
    the :class:`ResNetTrunk`, global average pooling, optional dropout and the classifier
    ``fc``.

    Parameters
    ----------
    cfg : ResNetConfig
        The architecture.
    classes : int
        Number of output classes.
    final_drop : float or None
        Dropout before the classifier; None takes the config's value.
    **kwargs
        The options of :class:`ResNetTrunk`: ``dilated``, ``dilation``, ``norm_layer``,
        ``norm_kwargs``, ``use_global_stats``, ``last_gamma``, ``dropblock_prob``,
        ``dropblock_mode``.
    """

    def __init__(self, cfg, classes=1000, final_drop=None, **kwargs):
        if isinstance(classes, bool) or not isinstance(classes, numbers.Integral) or classes < 1:
            raise UserError(f"classes must be a positive integer, got {classes!r}.")
        classes = int(classes)
        super().__init__(cfg, **kwargs)
        final_drop = cfg.final_drop if final_drop is None else final_drop
        with self.name_scope():
            self.avgpool = nn.GlobalAvgPool2D()
            self.flat = nn.Flatten()
            self.drop = nn.Dropout(final_drop) if final_drop > 0 else None
            self.fc = nn.Dense(classes, in_units=self._in_channels)

    def hybrid_forward(self, F, x):
        x = self.maxpool(self.stem(F, x))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = self.flat(self.avgpool(x))
        if self.drop is not None:
            x = self.drop(x)
        return self.fc(x)
