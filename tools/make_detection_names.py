"""Write the parameter names and shapes of Detectron2-ResNeSt's and MMDetection's ResNeSt
backbones, built by their own model code, to tests/fixtures/detection_names/*.json.

Neither installs here (Detectron2-ResNeSt is not on the package index; MMDetection needs mmcv's
compiled operators), so this runs their backbone source files as they are, in the torch
environment, with the framework helpers they call replaced by the few lines below:

- Detectron2-ResNeSt (a checkout of zhanghang1989/detectron2-ResNeSt): its real
  ``modeling/backbone/{resnet,splat,backbone}.py`` and ``layers/{wrappers,batch_norm,
  shape_spec}.py``; stand-ins for ``detectron2.utils.comm`` (one process), fvcore's weight
  initialisation (names do not depend on it), the backbone registry, and the deformable
  convolutions (not built: no DCN in these configs).
- MMDetection (its wheel, ``pip download --no-deps mmdet==3.3.0``): its real
  ``models/backbones/{resnest,resnet}.py`` and ``models/layers/res_layer.py``; stand-ins for
  mmcv's ``build_conv_layer`` (``nn.Conv2d`` for the default ``conv_cfg=None``) and
  ``build_norm_layer`` (``nn.BatchNorm2d`` named ``'bn' + postfix``, mmcv's rule for BN),
  mmengine's ``BaseModule``/``Sequential`` (an ``nn.Module`` with ``init_cfg``) and the registry.

    .venv-torch/bin/python tools/make_detection_names.py --detectron2 ~/detectron2-ResNeSt \\
        --mmdet mmdet-3.3.0-py3-none-any.whl tests/fixtures/detection_names
"""
import argparse
import json
import os
import sys
import types
import zipfile


def _package(name):
    module = types.ModuleType(name)
    module.__path__ = []
    sys.modules[name] = module
    return module


def _run(name, source, package):
    module = types.ModuleType(name)
    module.__package__ = package
    sys.modules[name] = module
    exec(compile(source, name.replace(".", "/") + ".py", "exec"), module.__dict__)
    parent, _, leaf = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], leaf, module)
    return module


class _Registry:
    def register(self, *args, **kwargs):
        return (lambda fn: fn) if not args or not callable(args[0]) else args[0]

    register_module = register


def _names(model):
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def detectron2_names(root):
    """Detectron2-ResNeSt's backbone for depths 50, 101, 200, 269 (its ResNeSt configs:
    RADIX 2, DEEP_STEM, AVD, AVG_DOWN implied by radix > 1, NORM FrozenBN by default)."""
    import torch.nn as nn
    read = lambda rel: open(os.path.join(root, rel), encoding="utf-8").read()
    for pkg in ("detectron2", "detectron2.utils", "detectron2.layers", "detectron2.modeling",
                "detectron2.modeling.backbone", "fvcore", "fvcore.nn"):
        _package(pkg)
    comm = types.ModuleType("detectron2.utils.comm")
    comm.get_world_size = lambda: 1
    sys.modules["detectron2.utils.comm"] = sys.modules["detectron2.utils"].comm = comm
    init = types.ModuleType("fvcore.nn.weight_init")
    init.c2_msra_fill = lambda module: None
    sys.modules["fvcore.nn.weight_init"] = sys.modules["fvcore.nn"].weight_init = init
    layers = sys.modules["detectron2.layers"]
    for leaf in ("wrappers", "batch_norm", "shape_spec"):
        mod = _run(f"detectron2.layers.{leaf}", read(f"detectron2/layers/{leaf}.py"),
                   "detectron2.layers")
        for k, v in vars(mod).items():
            if not k.startswith("_"):
                setattr(layers, k, v)
    layers.DeformConv = layers.ModulatedDeformConv = nn.Module
    build = types.ModuleType("detectron2.modeling.backbone.build")
    build.BACKBONE_REGISTRY = _Registry()
    sys.modules["detectron2.modeling.backbone.build"] = build
    pkg = "detectron2.modeling.backbone"
    for leaf in ("backbone", "splat", "resnet"):
        _run(f"{pkg}.{leaf}", read(f"detectron2/modeling/backbone/{leaf}.py"), pkg)
    resnet = sys.modules[f"{pkg}.resnet"]
    out = {}
    for depth in (50, 101, 200, 269):
        cfg = _cfg(depth)
        shape = layers.ShapeSpec(channels=3)
        out[str(depth)] = _names(resnet.build_resnet_backbone(cfg, shape))
    return out


def _cfg(depth):
    ns = types.SimpleNamespace
    resnets = ns(DEPTH=depth, RADIX=2, DEEP_STEM=False, NORM="FrozenBN", STEM_OUT_CHANNELS=64,
                 OUT_FEATURES=["res2", "res3", "res4", "res5"], NUM_GROUPS=1,
                 WIDTH_PER_GROUP=64, RES2_OUT_CHANNELS=256, STRIDE_IN_1X1=False,
                 RES5_DILATION=1, DEFORM_ON_PER_STAGE=[False] * 4, DEFORM_MODULATED=False,
                 DEFORM_NUM_GROUPS=1, AVD=False, AVG_DOWN=False, BOTTLENECK_WIDTH=64)
    return ns(MODEL=ns(RESNETS=resnets, BACKBONE=ns(FREEZE_AT=0)))


def _mmdet_sources(path):
    files = {"resnest": "mmdet/models/backbones/resnest.py",
             "resnet": "mmdet/models/backbones/resnet.py",
             "res_layer": "mmdet/models/layers/res_layer.py"}
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            return {k: zf.read(v).decode("utf-8") for k, v in files.items()}
    return {k: open(os.path.join(path, v), encoding="utf-8").read() for k, v in files.items()}


def mmdet_names(path):
    """MMDetection's ``ResNeSt`` for depths 50, 101, 200 with its ResNeSt configs'
    settings (stem_channels 64 / 128, radix 2, reduction_factor 4, avg_down_stride)."""
    from typing import Any
    import torch.nn as nn
    src = _mmdet_sources(path)
    for pkg in ("mmcv", "mmengine", "mmdet", "mmdet.models", "mmdet.models.backbones",
                "mmdet.models.layers"):
        _package(pkg)
    cnn = types.ModuleType("mmcv.cnn")
    cnn.build_conv_layer = lambda cfg, *args, **kwargs: nn.Conv2d(*args, **kwargs)
    cnn.build_norm_layer = lambda cfg, features, postfix="": (f"bn{postfix}",
                                                               nn.BatchNorm2d(features))
    cnn.build_plugin_layer = None
    sys.modules["mmcv.cnn"] = cnn

    class BaseModule(nn.Module):
        def __init__(self, init_cfg=None):
            super().__init__()
            self.init_cfg = init_cfg

    class Sequential(BaseModule, nn.Sequential):
        def __init__(self, *args, init_cfg=None):
            BaseModule.__init__(self, init_cfg)
            nn.Sequential.__init__(self, *args)

    model = types.ModuleType("mmengine.model")
    model.BaseModule, model.Sequential = BaseModule, Sequential
    sys.modules["mmengine.model"] = model
    registry = types.ModuleType("mmdet.registry")
    registry.MODELS = _Registry()
    sys.modules["mmdet.registry"] = registry
    utils = types.ModuleType("mmdet.utils")
    utils.ConfigType = utils.OptConfigType = utils.OptMultiConfig = Any
    sys.modules["mmdet.utils"] = utils
    layer = _run("mmdet.models.layers.res_layer", src["res_layer"], "mmdet.models.layers")
    sys.modules["mmdet.models.layers"].ResLayer = layer.ResLayer
    _run("mmdet.models.backbones.resnet", src["resnet"], "mmdet.models.backbones")
    resnest = _run("mmdet.models.backbones.resnest", src["resnest"], "mmdet.models.backbones")
    out = {}
    for depth, stem in ((50, 64), (101, 128), (200, 128)):
        net = resnest.ResNeSt(depth=depth, stem_channels=stem, radix=2, reduction_factor=4,
                              avg_down_stride=True, norm_eval=False)
        out[str(depth)] = _names(net)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", help="folder for detectron2.json and mmdet.json")
    p.add_argument("--detectron2", help="checkout of zhanghang1989/detectron2-ResNeSt")
    p.add_argument("--detectron2-commit", default="", help="its commit, recorded")
    p.add_argument("--mmdet", help="the mmdet wheel (or an unpacked source tree)")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    jobs = []
    if args.detectron2:
        jobs.append(("detectron2", detectron2_names(args.detectron2),
                     f"zhanghang1989/detectron2-ResNeSt {args.detectron2_commit}".strip()))
    if args.mmdet:
        jobs.append(("mmdet", mmdet_names(args.mmdet), os.path.basename(args.mmdet)))
    for name, names, source in jobs:
        with open(os.path.join(args.out, f"{name}.json"), "w") as f:
            json.dump({"source": source, "generator": "tools/make_detection_names.py",
                       "depths": names}, f, indent=0, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
