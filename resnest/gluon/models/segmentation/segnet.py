"""A semantic segmentation network: the dilated ResNeSt backbone with GluonCV's heads.

:class:`SegmentationNet` is a :class:`~resnest.gluon.models.features.ResNetFeatures` giving
``layer3`` (c3) and ``layer4`` (c4) at output stride 8, with a main head on c4 (DeepLabV3 or
FCN) and, optionally, GluonCV's auxiliary FCN head on c3. Its parameters are the backbone's
(``conv1.*``, ``bn1.*``, ``layer1..4.*``) then ``head.*`` and ``auxlayer.*``: the structural
names of GluonCV's ``DeepLabV3`` / ``FCN`` and of its published files.

Outputs are GluonCV's: a tuple ``(main,)`` or ``(main, aux)`` of per-class scores (logits),
bilinearly upsampled (corners aligned) to the input's height and width, whatever they are.
GluonCV fixes the output size (and its ASPP pooling size) at construction.
"""
import numbers

from mxnet.gluon.nn import BatchNorm

from ...utils.errors import UserError
from ..features import ResNetFeatures
from .heads import DeepLabHead, FCNHead

__all__ = ["HEADS", "SegmentationNet", "check_classes"]

HEADS = ("deeplab", "fcn")


def check_classes(classes):
    """``classes`` as an int, or a UserError saying it must be a positive integer."""
    if isinstance(classes, bool) or not isinstance(classes, numbers.Integral) or classes < 1:
        raise UserError(f"classes must be a positive integer (the number of classes of the "
                        f"masks), got {classes!r}.")
    return int(classes)


class SegmentationNet(ResNetFeatures):
    """Dilated ResNeSt backbone + segmentation head (+ auxiliary FCN head).

    Parameters
    ----------
    cfg : ResNetConfig
        The backbone's architecture.
    classes : int
        Number of classes (output channels of every head).
    head : {'deeplab', 'fcn'}
        The main head on layer4: :class:`~.heads.DeepLabHead` (ASPP, GluonCV's DeepLabV3) or
        :class:`~.heads.FCNHead` (GluonCV's FCN).
    aux : bool
        Add the auxiliary :class:`~.heads.FCNHead` on layer3 (``auxlayer``) and return its
        output second; GluonCV trains with it (loss weight 0.5) and its published files hold it.
    head_channels : int, optional
        Width of the main head: ASPP width for 'deeplab' (GluonCV: 256), the 3x3 conv for
        'fcn' (GluonCV: a quarter of the input channels).
    rates : tuple of 3 int
        ASPP dilations (GluonCV: 12, 24, 36).
    head_lr_mult : float
        ``lr_mult`` of every head parameter, as GluonCV sets it (10): a Trainer then updates
        the new heads ten times faster than the pretrained backbone.
    norm_layer, norm_kwargs :
        Normalisation of the backbone and the heads (e.g. ``SyncBatchNorm``).
    **kwargs
        Backbone options of :class:`~resnest.gluon.models.resnet.ResNetTrunk`:
        ``use_global_stats``, ``last_gamma``, ``dropblock_prob``, ``dropblock_mode``. The
        backbone is always dilated (output stride 8).
    """

    def __init__(self, cfg, classes, head="deeplab", aux=True, head_channels=None,
                 rates=(12, 24, 36), head_lr_mult=10.0, norm_layer=BatchNorm,
                 norm_kwargs=None, **kwargs):
        classes = check_classes(classes)
        if head not in HEADS:
            raise UserError(f"head must be one of {', '.join(HEADS)}, not {head!r}.")
        for key in ("dilated", "dilation", "out_indices", "num_stages"):
            if key in kwargs:
                raise UserError(f"a segmentation backbone is always dilated to output stride "
                                f"8 with outputs layer3 and layer4; do not pass {key}=.")
        super().__init__(cfg, out_indices=(3, 4), dilated=True, norm_layer=norm_layer,
                         norm_kwargs=norm_kwargs, **kwargs)
        c3, c4 = (info.channels for info in self.feature_info)
        head_kw = dict(norm_layer=norm_layer, norm_kwargs=norm_kwargs)
        self.classes = classes
        with self.name_scope():
            if head == "deeplab":
                self.head = DeepLabHead(c4, classes, head_channels or 256, tuple(rates),
                                        **head_kw)
            else:
                self.head = FCNHead(c4, classes, head_channels, **head_kw)
            self.auxlayer = FCNHead(c3, classes, **head_kw) if aux else None
        for block in self.heads():
            block.collect_params().setattr("lr_mult", head_lr_mult)

    def heads(self):
        """The head blocks: ``head`` and, with ``aux``, ``auxlayer``."""
        return [b for b in (self.head, self.auxlayer) if b is not None]

    def head_prefixes(self):
        """Parameter-name prefixes of the heads (what a backbone's weights do not hold)."""
        return tuple(prefix for prefix, block in (("head.", self.head),
                                                  ("auxlayer.", self.auxlayer))
                     if block is not None)

    def class_prefixes(self):
        """Parameter-name prefixes of the layers whose shape is the class count: the last
        1x1 conv of each head (``head.block.4``, ``auxlayer.block.4``: GluonCV's names)."""
        return tuple(prefix + "block.4." for prefix in self.head_prefixes())

    def hybrid_forward(self, F, x):
        c3, c4 = super().hybrid_forward(F, x)
        outputs = [F.contrib.BilinearResize2D(self.head(c4), like=x, mode="like")]
        if self.auxlayer is not None:
            outputs.append(F.contrib.BilinearResize2D(self.auxlayer(c3), like=x, mode="like"))
        return tuple(outputs)
