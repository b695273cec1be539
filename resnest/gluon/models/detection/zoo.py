"""The registered detectors: Faster R-CNN FPN (task ``detection``) and Mask R-CNN FPN (task
``instance-segmentation``) on ResNeSt backbones, and tiny variants for tests."""
import dataclasses

import mxnet as mx
from mxnet.gluon.nn import BatchNorm

from ...classes import published_classes
from ...pretrained import PRETRAINED
from ...store import get_model_file
from ...utils.errors import UserError
from ..registry import get_model, register_model
from .faster_rcnn import FasterRCNNFPN, RCNNConfig
from .gluoncv_names import load_gluoncv_params
from .mask_rcnn import MaskRCNNConfig, MaskRCNNFPN

__all__ = []

_PREDICTORS = ("class_predictor.", "box_predictor.")

_DOC = """Build ``{name}``: {what} on the ``{backbone}`` backbone{weights}.

    Parameters
    ----------
    pretrained : bool or str
        True loads {published} from the store (``root``, else ``$MXNET_HOME/models``), a path
        loads such a file; every array is mapped onto the network through GluonCV's names
        and checked both ways. {no_weights}
    pretrained_backbone : bool or str
        True loads the ImageNet weights of ``{backbone}`` (a path: a classifier checkpoint)
        into the backbone and initialises the rest; ignored with ``pretrained``.
    classes : sequence of str, optional
        Class names; default the 80 COCO classes. Other classes get a fresh class and box
        predictor (initialised), also when the rest comes from ``pretrained``.
    root, ctx :
        Weights folder and the context of loaded or initialised parameters.
    norm_layer, norm_kwargs :
        Normalisation everywhere (backbone, pyramid, box head), e.g.
        ``mxnet.gluon.contrib.nn.SyncBatchNorm`` as GluonCV trained them; any of them loads
        the same arrays. Training needs batch statistics of more than one image (the
        split-attention's BN sees one value per image and channel): several images per
        device, SyncBatchNorm, or ``norm_kwargs={{'use_global_stats': True}}``.
    **kwargs
        Fields of :class:`~resnest.gluon.models.detection.{config}` overriding its settings
        (``rpn_test_post_nms=300``, ``nms_thresh=0.6``, ...).

    Without ``pretrained`` or ``pretrained_backbone`` the network is not initialised.
    """


def _config(base, kwargs):
    fields = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(kwargs) - fields)
    if unknown:
        raise UserError(f"unknown detector option(s) {', '.join(unknown)}; options: "
                        f"{', '.join(sorted(fields))}.")
    return dataclasses.replace(base, **kwargs)


def _classes(classes):
    coco = published_classes("coco").names
    if classes is None:
        return coco, False
    classes = [str(c) for c in classes]
    if not classes:
        raise UserError("classes must name at least one class.")
    return classes, classes != coco


def _initialise(net, ctx, skip=()):
    for name, param in net._collect_params_with_prefix().items():
        if not name.startswith(tuple(skip)):
            param.initialize(ctx=ctx)


def _create(spec, pretrained=False, pretrained_backbone=False, classes=None, root=None, ctx=None,
            norm_layer=BatchNorm, norm_kwargs=None, **kwargs):
    name, backbone_name, net_class, base, extra = spec
    config = _config(base, kwargs)
    classes, own_classes = _classes(classes)
    ctx = ctx or mx.cpu()
    use_backbone = bool(pretrained_backbone) and not pretrained
    backbone = get_model(backbone_name, features_only=True, out_indices=(1, 2, 3, 4),
                         pretrained=pretrained_backbone if use_backbone else False, root=root,
                         ctx=ctx, norm_layer=norm_layer, norm_kwargs=norm_kwargs)
    net = net_class(backbone, classes, config, norm_layer=norm_layer, norm_kwargs=norm_kwargs,
                    **extra)
    if pretrained:
        path = pretrained if isinstance(pretrained, str) else get_model_file(name, root)
        load_gluoncv_params(net, path, ctx=ctx, fresh=_PREDICTORS if own_classes else (),
                            name=name)
    elif use_backbone:
        _initialise(net, ctx, skip=("backbone.",))
    return net


def _register(name, backbone, task, what, net_class=FasterRCNNFPN, base=RCNNConfig(),
              extra=None):
    spec = (name, backbone, net_class, base, extra or {})

    def build(pretrained=False, pretrained_backbone=False, classes=None, root=None, ctx=None,
              norm_layer=BatchNorm, norm_kwargs=None, **kwargs):
        return _create(spec, pretrained, pretrained_backbone, classes, root, ctx, norm_layer,
                       norm_kwargs, **kwargs)
    info = PRETRAINED.get(name)
    build.__name__ = build.__qualname__ = name
    build.__doc__ = _DOC.format(
        name=name, what=what, backbone=backbone, config=type(base).__name__,
        weights=f" (GluonCV's ``{info.published_name}``)" if info else "",
        published=f"GluonCV's published COCO weights ``{info.file_name}``" if info
        else "a file in GluonCV's layout",
        no_weights="" if info else "No published weights exist for this model.")
    build.config = base
    globals()[name] = register_model(build, task=task)
    __all__.append(name)


_FASTER = "Faster R-CNN with a feature pyramid (GluonCV's FPN, RPN, 4-conv + 1-fc box head)"
_MASK = ("Mask R-CNN with a feature pyramid (the Faster R-CNN FPN plus GluonCV's mask head, "
         "4 convs and a deconvolution to 28x28 masks)")
for _depth in (50, 101, 269):
    _register(f"faster_rcnn_fpn_resnest{_depth}_coco", f"resnest{_depth}", "detection", _FASTER)
for _depth in (50, 101):
    _register(f"mask_rcnn_fpn_resnest{_depth}", f"resnest{_depth}", "instance-segmentation",
              _MASK, MaskRCNNFPN, MaskRCNNConfig())

# Narrow heads on resnest_tiny, small proposal counts, anchors and RoI levels scaled for
# images of a few hundred pixels (anchors 8 .. 128, P4 for 56-px regions): tests, toy data.
_TINY = dict(fpn_channels=32, rpn_channels=32, box_convs=2, box_channels=32, box_units=64,
             anchor_sizes=(8, 16, 32, 64, 128), roi_canonical_size=56.0,
             rpn_train_pre_nms=2000, rpn_train_post_nms=256, rpn_test_pre_nms=1000,
             rpn_test_post_nms=100, num_sample=64)
_register("faster_rcnn_fpn_resnest_tiny", "resnest_tiny", "detection",
          _FASTER + ", narrow: a tiny model for tests", base=RCNNConfig(**_TINY))
_register("mask_rcnn_fpn_resnest_tiny", "resnest_tiny", "instance-segmentation",
          _MASK + ", narrow: a tiny model for tests", MaskRCNNFPN,
          MaskRCNNConfig(**_TINY, mask_convs=2, mask_channels=32, mask_max_dets=100))
