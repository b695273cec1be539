"""ResNeSt as a backbone: the feature maps of chosen stages, timm's ``features_only`` convention.

>>> net = get_model("resnest50", features_only=True, out_indices=(1, 2, 3, 4), pretrained=True)
>>> c1, c2, c3, c4 = net(x)                     # strides 4, 8, 16, 32
>>> [(f.channels, f.stride) for f in net.feature_info]
[(256, 4), (512, 8), (1024, 16), (2048, 32)]

Indices, as timm numbers a ResNet's features: 0 is the deep stem after its ReLU and before the
max-pool (stride 2, ``2 * stem_width`` channels; the highest-resolution map, for U-Net-like
decoders), 1..4 are ``layer1`` .. ``layer4``. The stem after the max-pool is not offered: it has
layer1's stride with a quarter of its channels.

The parameter names are the classifier's without ``fc.*`` (and without the stages after the
last index asked for, which are not built), so the published ``.params`` and any checkpoint of
the classifier load into the backbone, and a backbone's saved weights load back into the
classifier's trunk.
"""
from typing import NamedTuple

from .resnet import Bottleneck, ResNetTrunk

__all__ = ["FeatureInfo", "ResNetFeatures"]


class FeatureInfo(NamedTuple):
    """One output of a backbone: its index (0 = stem, 1..4 = layer1..4), the block it comes
    from, its channel count and its stride (input size / feature size)."""

    index: int
    module: str
    channels: int
    stride: int


def _stage_info(cfg, stage_plan):
    """FeatureInfo of indices 0..4 for a config and the trunk's (strides, dilation) plan."""
    info = [FeatureInfo(0, "stem", cfg.stem_width * 2, 2)]
    stride = 4                                             # after the stem's max-pool
    for i, (width, (strides, _)) in enumerate(zip(cfg.channels, stage_plan)):
        stride *= strides
        info.append(FeatureInfo(i + 1, f"layer{i + 1}", width * Bottleneck.expansion, stride))
    return info


class ResNetFeatures(ResNetTrunk):
    """A ResNeSt trunk whose forward returns the feature maps of the stages in ``out_indices``.

    Parameters
    ----------
    cfg : ResNetConfig
        The architecture.
    out_indices : sequence of int
        Which maps to return, from 0 (stem, stride 2) and 1..4 (``layer1`` .. ``layer4``);
        returned in increasing order. Stages after the largest index are not built.
    **kwargs
        The options of :class:`~resnest.gluon.models.resnet.ResNetTrunk`: ``dilated``,
        ``dilation``, ``norm_layer``, ``norm_kwargs``, ``use_global_stats``, ``last_gamma``,
        ``dropblock_prob``, ``dropblock_mode``.

    Attributes
    ----------
    feature_info : list of FeatureInfo
        Channels and stride of each output, in output order; the strides say 8 or 16 for the
        dilated stages (``dilated=True``: 4, 8, 8, 8; ``dilation=2``: 4, 8, 16, 16).

    Raises
    ------
    ValueError
        ``out_indices`` empty or holding an index outside 0..4.
    """

    def __init__(self, cfg, out_indices=(1, 2, 3, 4), **kwargs):
        indices = sorted(set(int(i) for i in out_indices))
        if not indices or indices[0] < 0 or indices[-1] > 4:
            raise ValueError(f"out_indices must be a non-empty subset of 0..4 (0 = stem, "
                             f"1..4 = layer1..4), got {tuple(out_indices)}.")
        super().__init__(cfg, num_stages=indices[-1], **kwargs)
        self._out = tuple(indices)
        self.feature_info = [_stage_info(cfg, self.stage_plan)[i] for i in indices]

    def skipped_prefixes(self):
        """Parameter-name prefixes of a classifier's weights that this backbone does not hold:
        ``fc.`` and the stages after its last output."""
        return ("fc.",) + tuple(f"layer{i}." for i in range(self._out[-1] + 1, 5))

    def hybrid_forward(self, F, x):
        x = self.stem(F, x)
        outs = [x] if 0 in self._out else []
        if self._out[-1] > 0:
            x = self.maxpool(x)
        for i in range(1, self._out[-1] + 1):
            x = getattr(self, f"layer{i}")(x)
            if i in self._out:
                outs.append(x)
        return outs
