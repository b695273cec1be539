"""The registered ResNeSt models: each names its :class:`ResNetConfig` (the settings of the
authors' Gluon release, resnest 0.0.5, and GluonCV 0.10.5 for resnest14/26)."""
import mxnet as mx

from .registry import register_model
from ..store import get_model_file, load_weights
from .features import ResNetFeatures
from .resnet import ResNet, ResNetConfig

__all__ = []

_DOC = """Build ``{name}``{paper}.

    Parameters
    ----------
    pretrained : bool or str
        True loads the published weights from the store (``root``, else ``$MXNET_HOME/models``);
        a path loads that file (``.params``, or a ``.pth`` / ``.safetensors`` of timm, the authors'
        torch code, Detectron2 or MMDetection, see :mod:`resnest.gluon.convert`). Either is checked
        against the model's names and shapes.
    root : str, optional
        Folder of the weights store.
    ctx : Context
        Where the loaded weights go.
    features_only : bool
        Build the backbone (:class:`~resnest.gluon.models.features.ResNetFeatures`) instead of
        the classifier: its forward returns the feature maps of ``out_indices`` (default
        ``(1, 2, 3, 4)``: layer1..4; 0 is the stem), described by its ``feature_info``.
        Published weights and checkpoints load into it without their classifier ``fc.*``.
    **kwargs
        Passed to :class:`ResNet`: ``classes``, ``last_gamma``, ``dropblock_prob``,
        ``dropblock_mode``, ``final_drop``, ``norm_layer``, ``norm_kwargs``, ``dilated``,
        ``dilation``, ``use_global_stats``; with ``features_only`` all but ``classes`` and
        ``final_drop``, plus ``out_indices``.
    """


def _create(name, cfg, pretrained=False, root=None, ctx=None, features_only=False, **kwargs):
    if features_only:
        net = ResNetFeatures(cfg, **kwargs)
        ignore = net.skipped_prefixes()
    else:
        if "out_indices" in kwargs:
            raise ValueError("out_indices selects a backbone's outputs; pass "
                             "features_only=True with it.")
        net, ignore = ResNet(cfg, **kwargs), ()
    if pretrained:
        path = pretrained if isinstance(pretrained, str) else get_model_file(name, root)
        load_weights(net, path, ctx=ctx or mx.cpu(), name=name, ignore=ignore)
    return net


def _model(name, cfg, paper=""):
    """Register a constructor called ``name`` that builds ``cfg``."""
    def build(pretrained=False, root=None, ctx=None, features_only=False, **kwargs):
        return _create(name, cfg, pretrained, root, ctx, features_only, **kwargs)
    build.__name__ = build.__qualname__ = name
    build.__doc__ = _DOC.format(name=name, paper=paper)
    build.config = cfg
    globals()[name] = register_model(build)
    __all__.append(name)


_model("resnest14", ResNetConfig((1, 1, 1, 1)), ", ResNeSt-14 (2s1x64d)")
_model("resnest26", ResNetConfig((2, 2, 2, 2)), ", ResNeSt-26 (2s1x64d)")
_model("resnest50", ResNetConfig((3, 4, 6, 3)), ", ResNeSt-50 (2s1x64d)")
_model("resnest101", ResNetConfig((3, 4, 23, 3), stem_width=64), ", ResNeSt-101 (2s1x64d)")
_model("resnest200", ResNetConfig((3, 24, 36, 3), stem_width=64, final_drop=0.2),
       ", ResNeSt-200 (2s1x64d)")
_model("resnest269", ResNetConfig((3, 30, 48, 8), stem_width=64, final_drop=0.2),
       ", ResNeSt-269 (2s1x64d)")

# The "fast" ResNeSt-50 variants: {radix}s{cardinality}x{width}d with the avd pool first.
for _radix, _card, _width in [(1, 1, 64), (2, 1, 64), (4, 1, 64), (1, 2, 40), (2, 2, 40),
                              (4, 2, 40), (1, 4, 24)]:
    _model(f"resnest50_fast_{_radix}s{_card}x{_width}d",
           ResNetConfig((3, 4, 6, 3), radix=_radix, cardinality=_card, bottleneck_width=_width,
                        avd_first=True, name_prefix="resnetv1f_"),
           f", ResNeSt-50 fast ({_radix}s{_card}x{_width}d)")

# Small models for inputs like 32x32 and for tests: same block, narrow stages.
_model("resnest_tiny", ResNetConfig((1, 1, 1, 1), cardinality=2, stem_width=8,
                                    channels=(8, 16, 32, 64)), ", a tiny model for tests")
