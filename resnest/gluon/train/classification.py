"""Classification as a training task: the published recipe (warm-up + cosine LR, label
smoothing, mixup, the DropBlock ramp), its data and loaders, fine-tuning, and evaluation.

The runner (:mod:`.runner`) asks a task for everything that is not common to all training:
:class:`ClassificationTask` is the classification answer; the segmentation and detection
tasks answer the same questions.
"""
from dataclasses import dataclass

import mxnet as mx
import numpy as np

from ..checkpoint import record_beside
from ..classes import published_classes
from ..data.loaders import eval_loader, train_loader
from ..data.transforms import eval_transform
from ..evaluate import evaluate
from ..layers.dropblock import set_drop_prob
from ..models import get_model
from ..store import get_model_file
from ..utils.seed import derive_seed
from .config import TrainConfig
from .finetune import freeze_backbone, load_matching, set_classifier_lr_mult
from .inputs import resolve_inputs
from .losses import draw_mixup_lam, make_targets, soft_cross_entropy
from .schedule import dropblock_prob, global_lr, learning_rate

__all__ = ["ClassificationRecipe", "ClassificationTask", "build_net", "sorted_by_label"]


@dataclass
class ClassificationRecipe:
    """The per-epoch and per-step knobs of the classification recipe, as plain values (what
    :func:`~.engine.train_epoch` asks a recipe)."""
    classes: int
    num_epochs: int
    base_lr: float                  # global LR (per-worker LR x workers)
    warmup_epochs: int = 0
    smoothing_eps: float = 0.0
    mixup_alpha: float = 0.0        # 0: no mixup
    mixup_off_epoch: int = 0
    dropblock_target: float = 0.0
    seed: int = 0
    log_interval: int = 50

    def mixup_on(self, epoch):
        return self.mixup_alpha > 0 and epoch < self.num_epochs - self.mixup_off_epoch

    def begin_epoch(self, net, epoch):
        """DropBlock's ramp: the probability of this epoch."""
        set_drop_prob(net, dropblock_prob(epoch, self.num_epochs, self.dropblock_target))

    def learning_rate(self, step, steps_per_epoch):
        """Warm-up then cosine, for the global update number ``step``."""
        return learning_rate(step, self.num_epochs * steps_per_epoch,
                             self.warmup_epochs * steps_per_epoch, self.base_lr)

    def step_loss(self, rank, epoch, step):
        """The loss of one step: smoothed (and mixed, while mixup is on) cross-entropy; the
        mixup coefficient is a pure function of ``(seed, rank, epoch, step)``."""
        lam = None
        if self.mixup_on(epoch):
            rng = np.random.RandomState(derive_seed(self.seed, rank, epoch, step, 7))
            lam = draw_mixup_lam(rng, self.mixup_alpha)

        def loss(net, batch):
            data, targets = make_targets(batch[0], batch[1], self.classes, self.smoothing_eps,
                                         lam)
            return soft_cross_entropy(net(data), targets)
        return loss


def build_net(model, classes, ctx, last_gamma=False, dropblock_prob=0.0, final_drop=None,
              hybridize=True, dropblock_mode="batch", use_global_stats=False):
    """The model, Xavier-initialised (gaussian, in, magnitude 2) on ``ctx``."""
    kw = {} if final_drop is None else {"final_drop": final_drop}
    net = get_model(model, classes=classes, last_gamma=last_gamma,
                    dropblock_prob=dropblock_prob, dropblock_mode=dropblock_mode,
                    use_global_stats=use_global_stats, **kw)
    net.initialize(mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2), ctx=ctx)
    if hybridize:
        net.hybridize(static_alloc=True, static_shape=True)
    return net


def sorted_by_label(rec_path, probes=256):
    """True when the records' labels never decrease along the file (a class-ordered pack),
    judged from up to ``probes`` evenly spaced records."""
    rec = mx.recordio.MXIndexedRecordIO(rec_path[:-4] + ".idx", rec_path, "r")
    try:
        keys = sorted(rec.keys)
        picks = [keys[i * (len(keys) - 1) // max(1, probes - 1)] for i in range(probes)]
        labels = [mx.recordio.unpack(rec.read_idx(k))[0].label for k in picks]
    finally:
        rec.close()
    labels = [float(np.ravel(lab)[0]) for lab in labels]
    return all(a <= b for a, b in zip(labels, labels[1:]))


class ClassificationTask:
    """What a classification run needs beyond the common runner; ``cfg`` is a
    :class:`~.config.TrainConfig`."""

    name = "classification"
    config_class = TrainConfig
    eval_keys = ("top1", "top5", "val_loss", "val_samples")      # what evaluate() returns
    curve_keys = ("top1", "top5")

    @staticmethod
    def eval_text(record):
        """The evaluation part of an epoch's log line."""
        return (f" top1 {record['top1']:.2f}% top5 {record['top5']:.2f}% "
                f"({record['val_samples']} images)")

    def __init__(self, cfg):
        self.cfg = cfg

    def prepare(self, dist, log):
        """The :class:`~.inputs.TrainData` (packing class folders on rank 0 when needed)."""
        return resolve_inputs(self.cfg, dist, log)

    def run_identity(self, data, dist):
        """What fixes the run: a resume with other values continues another run."""
        return {"batch_size": self.cfg.batch_size, "lr": self.cfg.lr, "workers": dist.size,
                **data.fingerprints}

    def build_net(self, data, ctx, training=True):
        cfg = self.cfg
        if not training:             # the evaluation copy (see runner.evaluation_copy)
            return build_net(cfg.model, data.classes, ctx, final_drop=cfg.final_drop,
                             hybridize=cfg.mode == "hybrid")
        return build_net(cfg.model, data.classes, ctx, cfg.last_gamma, cfg.dropblock_prob,
                         cfg.final_drop, cfg.mode == "hybrid", cfg.dropblock_mode,
                         use_global_stats=cfg.freeze_backbone)

    def start_from_weights(self, net, data, ctx, log):
        """Fine-tuning: the published weights (--pretrained) or a weights file of the
        architecture; the classifier starts afresh when the classes differ from the weights'
        (names, or count)."""
        cfg = self.cfg
        if cfg.pretrained_params:
            record = record_beside(cfg.pretrained_params)
            source, names = cfg.pretrained_params, record.class_names if record else None
        else:
            source, names = get_model_file(cfg.model), published_classes("imagenet").names
        other = names is not None and data.class_names is not None and names != data.class_names
        loaded, fresh = load_matching(net, source, ctx, cfg.model, new_classifier=other)
        log(f"started from {source}: {len(loaded)} parameter arrays loaded"
            + (f", {len(fresh)} re-initialised ({', '.join(fresh)}: other classes)"
               if fresh else ""))

    def adjust_net(self, net, log):
        """The fine-tuning switches: a frozen backbone, a faster classifier."""
        if self.cfg.freeze_backbone:
            log(f"backbone frozen: {freeze_backbone(net)} parameter arrays get no gradient; "
                "BN uses its stored statistics")
        if self.cfg.classifier_lr_mult != 1.0:
            set_classifier_lr_mult(net, self.cfg.classifier_lr_mult)

    def loaders(self, dist, data, log):
        cfg = self.cfg
        backend = cfg.loader_backend
        if backend == "auto" and dist.size > 1 and sorted_by_label(data.rec_train):
            # The C++ reader hands each rank a contiguous block of the file; on a class-ordered
            # file that gives each rank a few classes per epoch: use the Python loader's shuffle.
            backend = "python"
            log(f"{data.rec_train} is ordered by class: using the Python loader's global "
                "shuffle (pack with im2rec.py --shuffle to use the faster C++ reader).")
        train = train_loader(data.rec_train, cfg.batch_size, input_size=cfg.input_size,
                             rank=dist.rank, num_ranks=dist.size, seed=cfg.seed,
                             num_workers=cfg.data_nthreads, jitter=cfg.jitter,
                             lighting=cfg.lighting, auto_aug=cfg.auto_aug, ctx=dist.ctx,
                             backend=backend, min_area=cfg.min_random_area,
                             mirror=not cfg.no_mirror)
        # In-training evaluation crops like verify.py at the training size.
        transform = eval_transform(cfg.model, crop_size=cfg.input_size,
                                   crop_ratio=cfg.crop_ratio)
        val = eval_loader(data.rec_val, cfg.batch_size, transform, rank=dist.rank,
                          num_ranks=dist.size, num_workers=cfg.data_nthreads, ctx=dist.ctx)
        return train, val

    def recipe(self, data, workers):
        cfg = self.cfg
        return ClassificationRecipe(
            classes=data.classes, num_epochs=cfg.num_epochs, base_lr=global_lr(cfg.lr, workers),
            warmup_epochs=cfg.warmup_epochs,
            smoothing_eps=cfg.smoothing_eps if cfg.label_smoothing else 0.0,
            mixup_alpha=cfg.mixup_alpha if cfg.mixup else 0.0,
            mixup_off_epoch=cfg.mixup_off_epoch, dropblock_target=cfg.dropblock_prob,
            seed=cfg.seed, log_interval=cfg.log_interval)

    def evaluate(self, net, loader, dist, progress=None):
        """``{'top1', 'top5', 'val_loss', 'val_samples'}`` over every rank."""
        return evaluate(net, loader, dist, progress=progress).metrics()

    def eval_settings(self):
        """How the checkpoint is evaluated (verify.py and predict.py read it)."""
        return {"crop_size": self.cfg.input_size, "crop_ratio": self.cfg.crop_ratio}

    def describe(self, data):
        return (f"{data.classes} classes, {data.train_samples} training / {data.val_samples} "
                "validation images")
