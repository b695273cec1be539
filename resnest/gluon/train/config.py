"""The training configuration: dataclasses that are also the command line (every default is
typed once, on its field; see :mod:`resnest.gluon.utils.config`).

:class:`RunConfig` holds what every training run has (the optimiser, the run folder, resume,
devices); :class:`TrainConfig` adds the classification recipe and data. The task scripts
(segmentation, detection) extend :class:`RunConfig` the same way. The flags of the authors'
published command are accepted unchanged (``--use-rec``, ``--rec-train-idx`` and
``--rec-val-idx`` are accepted for compatibility: RecordIO is the only input and the ``.idx``
always sits beside its ``.rec``). ``check()`` refuses values that cannot work before any data
is read.

Fields marked ``operational`` say where and how a run executes (its folder, logging, threads);
the others define the run, and a ``--resume`` that changes one of those is refused unless
``--resume-override`` (:mod:`.resume`).
"""
import dataclasses
import os
from dataclasses import dataclass
from typing import Optional

from ..layers.dropblock import DROPBLOCK_MODES
from ..pretrained import DEFAULT_CROP_RATIO, DEFAULT_CROP_SIZE
from ..utils import config as fields
from ..utils.config import FRACTION, NON_NEGATIVE, POSITIVE, UNIT, at_least, check_fields, option
from ..utils.errors import UserError

__all__ = ["OPTIMIZERS", "TRAIN_DTYPES", "LOADER_BACKENDS", "RunConfig", "TrainConfig",
           "build_parser", "parse_config", "operational_fields"]

OPTIMIZERS = ("nag", "sgd")
TRAIN_DTYPES = ("float32", "float16")
LOADER_BACKENDS = ("auto", "rec", "python")
MODES = ("hybrid", "imperative")


def run_option(default, help="", **kw):
    """An operational field (see the module doc)."""
    return option(default, help, operational=True, **kw)


@dataclass
class RunConfig:
    """What every training run has; see ``--help`` of a training script for the meanings."""

    model: str = option("resnest50", "registered model name", group="recipe")
    batch_size: int = option(128, "per worker", check=POSITIVE, group="recipe")
    # Resuming for more (or fewer) epochs is allowed: the LR schedule then ends at the new
    # last epoch, and the runner says so.
    num_epochs: int = option(120, check=POSITIVE, group="recipe", operational=True)
    lr: float = option(0.1, "per worker; the global LR is lr x workers", check=POSITIVE,
                       group="recipe")
    optimizer: str = option("nag", choices=OPTIMIZERS, group="recipe")
    momentum: float = option(0.9, check=FRACTION, group="recipe")
    wd: float = option(1e-4, "weight decay", check=NON_NEGATIVE, group="recipe")
    no_wd: bool = option(False, "no weight decay on biases and BN gamma/beta", group="recipe")
    warmup_epochs: int = option(0, check=NON_NEGATIVE, group="recipe")
    dtype: str = option("float32", "float16 = MXNet AMP with dynamic loss scaling (GPU only)",
                        choices=TRAIN_DTYPES, group="recipe")
    pretrained: bool = option(False, "start from the published weights of --model",
                              group="fine-tuning")
    pretrained_params: str = option("", "start from this weights file of the architecture "
                                    "(.params, or a PyTorch .pth / .safetensors)",
                                    metavar="FILE", group="fine-tuning")
    seed: int = option(0, check=NON_NEGATIVE, group="run")
    mode: str = option("hybrid", choices=MODES, group="run")
    no_cuda: bool = run_option(False, "train on CPU even if GPUs are present", group="run")
    data_nthreads: int = run_option(4, "decoding workers per rank", check=NON_NEGATIVE,
                                    flags=("--data-nthreads", "-j", "--num-data-workers"),
                                    group="run")
    save_dir: str = run_option("params", "the run folder: checkpoints, log, metrics",
                               group="run")
    force: bool = run_option(False, "replace the run --save-dir holds (without --resume)",
                             group="run")
    save_frequency: int = run_option(10, "checkpoint every N epochs (and at the end)",
                                     check=NON_NEGATIVE, group="run")
    save_interval_steps: int = run_option(0, "also a complete checkpoint every N steps inside "
                                          "an epoch (0: none)", check=NON_NEGATIVE, group="run")
    eval_frequency: int = run_option(1, "evaluate every N epochs (and at the end)",
                                     check=NON_NEGATIVE, group="run")
    log_interval: int = run_option(50, "iterations between log lines", check=POSITIVE,
                                   group="run")
    logging_file: str = run_option("train.log", "log file inside --save-dir", group="run")
    resume: bool = run_option(False, "continue the run in --save-dir from its latest "
                              "checkpoint", group="run")
    resume_override: bool = run_option(False, "resume although settings that define the run "
                                       "changed (the new values apply)", group="run")
    resume_epoch: int = run_option(0, "first epoch to train (with --resume-params)",
                                   check=NON_NEGATIVE, group="run")
    resume_params: str = run_option("", "the authors' resume: weights file", group="run")
    resume_states: str = run_option("", "the authors' resume: optimizer states file",
                                    group="run")
    timeout: float = run_option(1800.0, "exit non-zero when no step completes for this many "
                                "seconds (a dead or hung rank)", check=POSITIVE, group="run")
    progress: bool = run_option(True, "no progress bar", flags=("--no-progress",),
                                group="run")

    @property
    def starts_from_weights(self):
        """Whether a new run starts from trained weights (the task's ``start_from_weights``)
        rather than from its initialisation; a task's config adds its own starts."""
        return bool(self.pretrained or self.pretrained_params)

    def check(self):
        """Raise :class:`UserError` (one sentence) on values that cannot work."""
        check_fields(self)
        if self.warmup_epochs > self.num_epochs:
            raise UserError(f"--warmup-epochs must be in [0, --num-epochs], got "
                            f"{self.warmup_epochs}.")
        if self.resume and (self.resume_params or self.resume_states):
            raise UserError("use either --resume or --resume-params/--resume-states, not both.")
        if self.pretrained and self.pretrained_params:
            raise UserError("use either --pretrained or --pretrained-params, not both.")
        if self.resume and self.force:
            raise UserError("--force replaces the run in --save-dir and --resume continues it; "
                            "use one of them.")
        if os.path.exists(self.save_dir) and not os.path.isdir(self.save_dir):
            raise UserError(f"--save-dir {self.save_dir} is a file, not a folder; give a "
                            "folder for the checkpoints.")


@dataclass
class TrainConfig(RunConfig):
    """A classification run: :class:`RunConfig` plus the data and the published recipe."""

    rec_train: str = option("", "training .rec (its .idx beside it)", group="data")
    rec_val: str = option("", "validation .rec (its .idx beside it)", group="data")
    train_dir: str = option("", "or: a folder of class sub-folders, packed once into a .rec "
                            "cached beside it", group="data")
    val_dir: str = option("", "or: the validation class folders", group="data")
    classes: Optional[int] = option(None, "default: read from the data", check=at_least(2),
                                    group="data")
    input_size: int = option(DEFAULT_CROP_SIZE, check=at_least(32), group="data")
    crop_ratio: float = option(DEFAULT_CROP_RATIO, "evaluation crop ratio", check=UNIT,
                               group="data")
    auto_aug: bool = option(False, "AutoAugment (ImageNet policy)",
                            flags=("--auto_aug", "--auto-aug"), group="data")
    jitter: float = option(0.4, "colour-jitter strength", check=NON_NEGATIVE, group="data")
    lighting: float = option(0.1, "PCA-lighting std", check=NON_NEGATIVE, group="data")
    min_random_area: Optional[float] = option(
        None, "smallest area fraction of the random crop (default 0.08, 0.1 for inputs >= 320;"
        " larger for small centred objects)", check=UNIT, group="data")
    no_mirror: bool = option(False, "no random horizontal flips (e.g. digits)", group="data")
    loader_backend: str = run_option("auto", choices=LOADER_BACKENDS, group="data")
    last_gamma: bool = option(False, "zero-init the last BN gamma of each block",
                              group="recipe")
    label_smoothing: bool = option(False, group="recipe")
    smoothing_eps: float = option(0.1, flags=("--label-smoothing-eps",), check=FRACTION,
                                  group="recipe")
    mixup: bool = option(False, group="recipe")
    mixup_alpha: float = option(0.2, check=POSITIVE, group="recipe")
    mixup_off_epoch: int = option(0, "no mixup in the last N epochs", check=NON_NEGATIVE,
                                  group="recipe")
    dropblock_prob: float = option(
        0.1, "DropBlock probability in stages 3-4, reached linearly at the last epoch "
        "(default 0.1: the authors' models build it in, so their published command trains "
        "with it; 0 builds no DropBlock)", check=FRACTION, group="recipe")
    dropblock_mode: str = option(
        "batch", "batch: one mask shared by the batch, per channel (the authors' training); "
        "sample: one mask per sample, shared by its channels", choices=DROPBLOCK_MODES,
        group="recipe")
    final_drop: Optional[float] = option(None, check=FRACTION, group="recipe")
    classifier_lr_mult: float = option(1.0, "the classifier learns this many times faster "
                                       "than the rest", check=POSITIVE, group="fine-tuning")
    freeze_backbone: bool = option(False, "train the classifier only", group="fine-tuning")

    def check(self):
        super().check()
        for rec, folder, split in ((self.rec_train, self.train_dir, "train"),
                                   (self.rec_val, self.val_dir, "val")):
            if bool(rec) == bool(folder):
                raise UserError(f"give the {split} data once: --rec-{split} FILE.rec or "
                                f"--{split}-dir FOLDER (class sub-folders).")


def operational_fields(cls):
    """Names of the fields of ``cls`` that do not define the run (see the module doc)."""
    return {f.name for f in dataclasses.fields(cls) if f.metadata.get("operational")}


# Accepted from the authors' published command, and ignored (see the module doc).
_COMPAT = (("--rec-train-idx", "the .idx beside --rec-train is used"),
           ("--rec-val-idx", "the .idx beside --rec-val is used"))


def build_parser(cls=TrainConfig, description=None):
    """The argument parser of a training script: the fields of ``cls`` and ``--verbose``, and
    for classification the authors' compatibility flags."""
    classification = issubclass(cls, TrainConfig)
    parser = fields.build_parser(cls, description or (
        "Train a ResNeSt (or any registered model) from RecordIO files or class folders, in "
        "one process or under horovodrun." if classification else cls.__doc__.strip()))
    if classification:
        for flag, why in _COMPAT:
            parser.add_argument(flag, default="", help=f"accepted for compatibility; {why}")
        parser.add_argument("--use-rec", action="store_true",
                            help="accepted for compatibility (RecordIO is the only input)")
        parser.add_argument("--lr-mode", default="cosine", choices=["cosine"],
                            help="warm-up then cosine to 0")
    parser.add_argument("--verbose", action="store_true", help="also show MXNet's native log "
                        "lines")
    return parser


def parse_config(argv=None, cls=TrainConfig):
    """Parse a command line into a checked config of ``cls``."""
    return fields.parse_config(cls, build_parser(cls), argv)

