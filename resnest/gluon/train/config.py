"""The training configuration: one dataclass, and the command line that fills it.

The flags of the authors' published command are accepted unchanged (``--use-rec``,
``--rec-train-idx`` and ``--rec-val-idx`` are accepted for compatibility: RecordIO is the only
input and the ``.idx`` always sits beside its ``.rec``). Everything the library needs is then
read from :class:`TrainConfig`, never from ``argparse`` objects. :meth:`TrainConfig.check`
refuses values that cannot work before any data is read.
"""
import argparse
import os
from dataclasses import dataclass, field
from typing import Optional

from ..utils.errors import UserError

__all__ = ["TrainConfig", "build_parser", "parse_config"]


@dataclass
class TrainConfig:
    """Every setting of a training run; see ``scripts/gluon/train.py --help`` for meanings."""
    rec_train: str = ""
    rec_val: str = ""
    train_dir: str = ""                    # class folders, packed once into a cached .rec
    val_dir: str = ""
    model: str = "resnest50"
    classes: Optional[int] = None          # None: read from the data
    input_size: int = 224
    crop_ratio: float = 0.875
    batch_size: int = 128                  # per worker
    num_epochs: int = 120
    lr: float = 0.1                        # per worker; global LR = lr x workers
    optimizer: str = "nag"
    momentum: float = 0.9
    wd: float = 1e-4
    no_wd: bool = False
    warmup_epochs: int = 0
    last_gamma: bool = False
    label_smoothing: bool = False
    smoothing_eps: float = 0.1
    mixup: bool = False
    mixup_alpha: float = 0.2
    mixup_off_epoch: int = 0
    auto_aug: bool = False
    dropblock_prob: float = 0.1           # the authors build 0.1 into every published model
    dropblock_mode: str = "batch"
    final_drop: Optional[float] = None
    jitter: float = 0.4
    lighting: float = 0.1
    min_random_area: Optional[float] = None  # None: the loader's (0.08; 0.1 at >= 320)
    no_mirror: bool = False
    pretrained: bool = False               # start from the published weights of --model
    pretrained_params: str = ""            # ... or from this .params of the architecture
    classifier_lr_mult: float = 1.0
    freeze_backbone: bool = False
    dtype: str = "float32"
    no_cuda: bool = False
    seed: int = 0
    data_nthreads: int = 4
    loader_backend: str = "auto"
    mode: str = "hybrid"
    save_dir: str = "params"
    save_frequency: int = 10
    save_interval_steps: int = 0           # also a complete checkpoint every N steps
    eval_frequency: int = 1
    log_interval: int = 50
    logging_file: str = "train.log"
    resume: bool = False
    resume_override: bool = False
    resume_epoch: int = 0
    resume_params: str = ""
    resume_states: str = ""
    timeout: float = 1800.0
    progress: bool = True
    extra: dict = field(default_factory=dict)

    def check(self):
        """Raise :class:`UserError` (one sentence) on values that cannot work."""
        _check_ranges(self)
        _check_sources(self)
        if self.resume and (self.resume_params or self.resume_states):
            raise UserError("use either --resume or --resume-params/--resume-states, not both.")
        if self.pretrained and self.pretrained_params:
            raise UserError("use either --pretrained or --pretrained-params, not both.")
        if os.path.exists(self.save_dir) and not os.path.isdir(self.save_dir):
            raise UserError(f"--save-dir {self.save_dir} is a file, not a folder; give a "
                            "folder for the checkpoints.")


def _check_ranges(cfg):
    positive = {"batch_size": cfg.batch_size, "num_epochs": cfg.num_epochs, "lr": cfg.lr,
                "log_interval": cfg.log_interval, "timeout": cfg.timeout,
                "classifier_lr_mult": cfg.classifier_lr_mult}
    for name, value in positive.items():
        if not value > 0:
            raise UserError(f"--{name.replace('_', '-')} must be positive, got {value}.")
    not_negative = {"wd": cfg.wd, "jitter": cfg.jitter, "lighting": cfg.lighting,
                    "save_frequency": cfg.save_frequency, "eval_frequency": cfg.eval_frequency,
                    "save_interval_steps": cfg.save_interval_steps,
                    "mixup_off_epoch": cfg.mixup_off_epoch, "resume_epoch": cfg.resume_epoch,
                    "data_nthreads": cfg.data_nthreads, "seed": cfg.seed}
    for name, value in not_negative.items():
        if not value >= 0:
            raise UserError(f"--{name.replace('_', '-')} must be 0 or more, got {value}.")
    if cfg.input_size < 32:
        raise UserError(f"--input-size {cfg.input_size} is too small: the models downsample by "
                        "32, so use 32 or more.")
    fractions = {"crop_ratio": (cfg.crop_ratio, False), "momentum": (cfg.momentum, True),
                 "dropblock_prob": (cfg.dropblock_prob, True),
                 "label_smoothing_eps": (cfg.smoothing_eps, True)}
    for name, (value, zero_ok) in fractions.items():
        if not ((0 <= value < 1) if zero_ok else (0 < value <= 1)):
            span = "[0, 1)" if zero_ok else "(0, 1]"
            raise UserError(f"--{name.replace('_', '-')} must be in {span}, got {value}.")
    if cfg.min_random_area is not None and not 0 < cfg.min_random_area <= 1:
        raise UserError(f"--min-random-area must be in (0, 1], got {cfg.min_random_area}.")
    if cfg.final_drop is not None and not 0 <= cfg.final_drop < 1:
        raise UserError(f"--final-drop must be in [0, 1), got {cfg.final_drop}.")
    if cfg.warmup_epochs < 0 or cfg.warmup_epochs > cfg.num_epochs:
        raise UserError(f"--warmup-epochs must be in [0, --num-epochs], got "
                        f"{cfg.warmup_epochs}.")
    if cfg.mixup and cfg.mixup_alpha <= 0:
        raise UserError(f"--mixup-alpha must be positive, got {cfg.mixup_alpha}.")
    if cfg.classes is not None and cfg.classes < 2:
        raise UserError(f"--classes must be at least 2, got {cfg.classes}.")


def _check_sources(cfg):
    for rec, folder, split in ((cfg.rec_train, cfg.train_dir, "train"),
                               (cfg.rec_val, cfg.val_dir, "val")):
        if bool(rec) == bool(folder):
            raise UserError(f"give the {split} data once: --rec-{split} FILE.rec or "
                            f"--{split}-dir FOLDER (class sub-folders).")


def _data_args(a):
    a("--rec-train", default="", help="training .rec (its .idx beside it)")
    a("--rec-val", default="", help="validation .rec (its .idx beside it)")
    a("--train-dir", default="", help="or: a folder of class sub-folders, packed once into a "
                                      ".rec cached beside it")
    a("--val-dir", default="", help="or: the validation class folders")
    a("--rec-train-idx", default="", help="accepted for compatibility; the .idx beside "
                                          "--rec-train is used")
    a("--rec-val-idx", default="", help="accepted for compatibility")
    a("--use-rec", action="store_true", help="accepted for compatibility (RecordIO is the "
                                             "only input)")
    a("--classes", type=int, default=None, help="default: read from the data")
    a("--input-size", type=int, default=224)
    a("--crop-ratio", type=float, default=0.875, help="evaluation crop ratio")
    a("--auto_aug", "--auto-aug", dest="auto_aug", action="store_true")
    a("--jitter", type=float, default=0.4, help="colour-jitter strength")
    a("--lighting", type=float, default=0.1, help="PCA-lighting std")
    a("--min-random-area", type=float, default=None,
      help="smallest area fraction of the random crop (default 0.08, 0.1 for inputs >= 320; "
           "larger for small centred objects)")
    a("--no-mirror", action="store_true", help="no random horizontal flips (e.g. digits)")
    a("--data-nthreads", "-j", "--num-data-workers", dest="data_nthreads", type=int,
      default=4, help="decoding workers per rank")
    a("--loader-backend", default="auto", choices=["auto", "rec", "python"])


def _recipe_args(a):
    a("--model", default="resnest50")
    a("--batch-size", type=int, default=128, help="per worker")
    a("--num-epochs", type=int, default=120)
    a("--lr", type=float, default=0.1, help="per worker; the global LR is lr x workers")
    a("--lr-mode", default="cosine", choices=["cosine"], help="warm-up then cosine to 0")
    a("--optimizer", default="nag", choices=["nag", "sgd"])
    a("--momentum", type=float, default=0.9)
    a("--wd", type=float, default=1e-4)
    a("--no-wd", action="store_true", help="no weight decay on biases and BN gamma/beta")
    a("--warmup-epochs", type=int, default=0)
    a("--last-gamma", action="store_true", help="zero-init the last BN gamma of each block")
    a("--label-smoothing", action="store_true")
    a("--label-smoothing-eps", dest="smoothing_eps", type=float, default=0.1)
    a("--mixup", action="store_true")
    a("--mixup-alpha", type=float, default=0.2)
    a("--mixup-off-epoch", type=int, default=0, help="no mixup in the last N epochs")
    a("--dropblock-prob", type=float, default=0.1,
      help="DropBlock probability in stages 3-4, reached linearly at the last epoch (default "
           "0.1: the authors' models build it in, so their published command trains with it; "
           "0 builds no DropBlock)")
    a("--dropblock-mode", default="batch", choices=["batch", "sample"],
      help="batch: one mask shared by the batch, per channel (the authors' training); "
           "sample: one mask per sample, shared by its channels")
    a("--final-drop", type=float, default=None)
    a("--dtype", default="float32", choices=["float32", "float16"],
      help="float16 = MXNet AMP with dynamic loss scaling (GPU only)")


def _finetune_args(a):
    a("--pretrained", action="store_true",
      help="start from the published weights of --model (fine-tuning)")
    a("--pretrained-params", default="", metavar="FILE",
      help="start from this .params of the architecture (e.g. a checkpoint for other classes)")
    a("--classifier-lr-mult", type=float, default=1.0,
      help="the classifier learns this many times faster than the rest")
    a("--freeze-backbone", action="store_true", help="train the classifier only")


def _run_args(a):
    a("--no-cuda", action="store_true", help="train on CPU even if GPUs are present")
    a("--seed", type=int, default=0)
    a("--mode", default="hybrid", choices=["hybrid", "imperative"])
    a("--save-dir", default="params")
    a("--save-frequency", type=int, default=10, help="checkpoint every N epochs (and at "
                                                       "the end)")
    a("--save-interval-steps", type=int, default=0,
      help="also a complete checkpoint every N steps inside an epoch (0: none)")
    a("--eval-frequency", type=int, default=1, help="evaluate every N epochs (and at the end)")
    a("--log-interval", type=int, default=50, help="iterations between log lines")
    a("--logging-file", default="train.log", help="log file inside --save-dir")
    a("--resume", action="store_true", help="continue from the latest complete checkpoint "
                                            "in --save-dir")
    a("--resume-override", action="store_true",
      help="resume although the batch size, LR, number of ranks or data changed")
    a("--resume-epoch", type=int, default=0, help="first epoch to train (with "
                                                   "--resume-params)")
    a("--resume-params", default="")
    a("--resume-states", default="")
    a("--timeout", type=float, default=1800.0,
      help="exit non-zero when no step completes for this many seconds (a dead or hung rank)")
    a("--no-progress", dest="progress", action="store_false", help="no progress bar")
    a("--verbose", action="store_true", help="also show MXNet's native log lines")


def build_parser():
    """The argument parser: the authors' flags plus this project's additions."""
    p = argparse.ArgumentParser(
        description="Train a ResNeSt (or any registered model) from RecordIO files or class "
                    "folders, in one process or under horovodrun.")
    for group in (_data_args, _recipe_args, _finetune_args, _run_args):
        group(p.add_argument)
    return p


_IGNORED = {"rec_train_idx", "rec_val_idx", "use_rec", "lr_mode", "verbose"}


def parse_config(argv=None):
    """Parse a command line into a checked :class:`TrainConfig`."""
    ns = vars(build_parser().parse_args(argv))
    extra = {k: ns.pop(k) for k in list(ns) if k in _IGNORED}
    cfg = TrainConfig(**ns, extra=extra)
    cfg.check()
    return cfg
