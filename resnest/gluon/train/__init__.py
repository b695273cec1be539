"""Training ResNeSt (or any registered model), alone or under ``horovodrun``.

>>> from resnest.gluon.train import parse_config, train
>>> train(parse_config(["--rec-train", "t.rec", "--rec-val", "v.rec", "--model", "resnest50"]))

Modules: :mod:`.config` (flags -> :class:`TrainConfig`), :mod:`.runner` (a whole run of any
task), :mod:`.classification` (the classification task and recipe), :mod:`.engine` (step,
epoch), :mod:`.resume` (where a run starts), :mod:`.schedule` (LR, DropBlock), :mod:`.losses`
(smoothing, mixup), :mod:`.scaling` (fp16 loss scaling), :mod:`.finetune`, :mod:`.inputs`
(the classification data), :mod:`.monitor`. Checkpoints and their records:
:mod:`resnest.gluon.checkpoint`.
"""
from .config import RunConfig, TrainConfig, build_parser, parse_config
from .runner import train

__all__ = ["RunConfig", "TrainConfig", "build_parser", "parse_config", "train"]
