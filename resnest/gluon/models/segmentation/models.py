"""The registered segmentation models (``task='segmentation'``).

* ``deeplab_resnest{50,101,200,269}_ade``: GluonCV 0.10.5's published DeepLabV3 models, trained
  on ADE20K (150 classes); ``pretrained=True`` loads GluonCV's file from the weights store.
* ``deeplab_resnest{14,26,50,101,200,269}`` and ``fcn_resnest{14,26,50,101,200,269}``: the
  same networks (DeepLabV3, or GluonCV's FCN head) for your own data; ``classes`` is required,
  and ``pretrained_backbone=True`` starts the backbone from the published ImageNet classifier
  (resnest14/26: GluonCV's; the others: the authors').
* ``deeplab_resnest_tiny`` and ``fcn_resnest_tiny``: on ``resnest_tiny``'s backbone, narrow
  heads, for tests and quick experiments.
"""
import mxnet as mx

from ...pretrained import PRETRAINED
from ...store import get_model_file, load_weights
from ...utils.errors import UserError
from .. import resnest as classifiers
from ..registry import register_model
from .segnet import SegmentationNet, check_classes

__all__ = ["backbone_of"]


def backbone_of(name):
    """The registered classifier whose trunk segmentation model ``name`` is built on (e.g.
    ``'resnest50'`` for ``deeplab_resnest50_ade``)."""
    build = globals().get(name)
    if build is None or not hasattr(build, "backbone"):
        raise UserError(f"{name!r} is not a segmentation model; known: "
                        f"{', '.join(n for n in __all__ if n != 'backbone_of')}.")
    return build.backbone

_DOC = """Build ``{name}``: {what}.

    Parameters
    ----------
    classes : int
        Number of classes{classes_note}.
    aux : bool
        Keep the auxiliary FCN head on layer3 (outputs ``(main, aux)``; else ``(main,)``).
    pretrained : bool or str
        True loads the published weights from the store (``root``, else
        ``$MXNET_HOME/models``); a path loads that ``.params`` file. Names and shapes are
        checked (with ``aux=False`` the file's ``auxlayer.*`` is not used).
    pretrained_backbone : bool
        Load the published ImageNet weights of ``{backbone}`` (from the store) into the
        backbone; the heads are initialised (MXNet's default initializer, as GluonCV does).
        Not used with ``pretrained``, whose file holds the backbone too.
    root : str, optional
        Folder of the weights store.
    ctx : Context
        Where loaded weights go.
    **kwargs
        Passed to :class:`~resnest.gluon.models.segmentation.segnet.SegmentationNet`:
        ``head_channels``, ``rates``, ``head_lr_mult``, ``norm_layer``, ``norm_kwargs``,
        ``use_global_stats``, ``last_gamma``, ``dropblock_prob``, ``dropblock_mode``.
    """


def _create(name, cfg, head, backbone, classes, aux=True, pretrained=False,
            pretrained_backbone=False, root=None, ctx=None, **kwargs):
    ctx = ctx or mx.cpu()
    if classes is None:
        raise UserError(f"{name} is built for your own data: pass classes=N, the number of "
                        "classes of your masks.")
    classes = check_classes(classes)
    info = PRETRAINED.get(name)
    if pretrained is True and info is not None and classes != info.classes:
        raise UserError(f"the published {name} weights predict {info.classes} classes "
                        f"({info.class_list}), not {classes}; build it with "
                        f"classes={info.classes}, or use pretrained_backbone=True for "
                        "your own classes.")
    net = SegmentationNet(cfg, classes, head=head, aux=aux, **kwargs)
    if pretrained:
        path = pretrained if isinstance(pretrained, str) else get_model_file(name, root)
        load_weights(net, path, ctx=ctx, name=name, ignore=() if aux else ("auxlayer.",))
    elif pretrained_backbone:
        net.initialize(ctx=ctx)
        load_weights(net, get_model_file(backbone, root), ctx=ctx, name=backbone,
                     ignore=("fc.",), keep=net.head_prefixes())
    return net


def _model(name, backbone, head, what, classes=None, head_channels=None):
    """Register a constructor ``name`` for ``head`` on the backbone of classifier
    ``backbone``; ``classes`` is its default class count (None: required)."""
    cfg = getattr(classifiers, backbone).config

    def build(classes=classes, aux=True, pretrained=False, pretrained_backbone=False,
              root=None, ctx=None, **kwargs):
        if head_channels is not None:
            kwargs.setdefault("head_channels", head_channels)
        return _create(name, cfg, head, backbone, classes, aux, pretrained,
                       pretrained_backbone, root, ctx, **kwargs)
    build.__name__ = build.__qualname__ = name
    note = " (default 150, ADE20K's, as the published weights)" if classes else \
        " (required)"
    build.__doc__ = _DOC.format(name=name, what=what, classes_note=note, backbone=backbone)
    build.config, build.backbone = cfg, backbone
    globals()[name] = register_model(build, task="segmentation")
    __all__.append(name)


for _depth in (50, 101, 200, 269):
    _model(f"deeplab_resnest{_depth}_ade", f"resnest{_depth}", "deeplab",
           f"GluonCV's DeepLabV3 on ResNeSt-{_depth}, trained on ADE20K", classes=150)
for _depth in (14, 26, 50, 101, 200, 269):
    _model(f"deeplab_resnest{_depth}", f"resnest{_depth}", "deeplab",
           f"DeepLabV3 (GluonCV's) on ResNeSt-{_depth}, for your own classes")
    _model(f"fcn_resnest{_depth}", f"resnest{_depth}", "fcn",
           f"FCN (GluonCV's head) on ResNeSt-{_depth}, for your own classes")
_model("deeplab_resnest_tiny", "resnest_tiny", "deeplab",
       "DeepLabV3 on resnest_tiny with a 32-wide head, for tests", head_channels=32)
_model("fcn_resnest_tiny", "resnest_tiny", "fcn",
       "FCN on resnest_tiny, for tests")
