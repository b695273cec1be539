"""Training ResNeSt (or any registered model) from RecordIO, alone or under ``horovodrun``.

>>> from resnest.gluon.train import parse_config, train
>>> train(parse_config(["--rec-train", "t.rec", "--rec-val", "v.rec", "--model", "resnest50"]))

Modules: :mod:`.config` (flags -> :class:`TrainConfig`), :mod:`.distributed` (Horovod or one
process, the rank-death guard), :mod:`.schedule` (LR, DropBlock), :mod:`.losses` (smoothing,
mixup), :mod:`.engine` (step, epoch, evaluation), :mod:`.checkpoint`, :mod:`.monitor`,
:mod:`.runner` (a whole run).
"""
from .config import TrainConfig, build_parser, parse_config
from .runner import train

__all__ = ["TrainConfig", "build_parser", "parse_config", "train"]
