"""A whole training run from a :class:`TrainConfig`: set-up, epochs, checkpoints, evaluation.

Order of an epoch: train, give every rank the same model (BN statistics averaged, rank 0's
weights and optimizer state), write the checkpoint (when due), then evaluate, so a failing
evaluation never costs the epoch. Where a resumed run starts is
decided by rank 0 and sent to every rank, and every rank checks that it reads the very same
checkpoint files (node-local disks or a lagging shared file system would otherwise make ranks
start at different epochs).
"""
import dataclasses
import os
import time

import mxnet as mx
import numpy as np

from ..evaluate import evaluate
from ..models import get_model, list_models
from ..utils.checksum import sha1_file
from ..utils.distributed import Watchdog, setup_distributed, trace_path
from ..utils.errors import UserError
from ..utils.memory import check_fits_in_memory
from ..utils.seed import seed_everything
from .checkpoint import load_checkpoint, remove_step_checkpoints, resolve_resume, save_checkpoint
from .engine import LossScaler, Recipe, sync_replicas, train_epoch
from .finetune import freeze_backbone, load_matching, set_classifier_lr_mult
from .inputs import resolve_inputs
from .monitor import Monitor
from .schedule import global_lr

__all__ = ["train", "build_net", "build_trainer", "agree_on_resume"]


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


def build_trainer(net, dist, optimizer="nag", lr=0.1, momentum=0.9, wd=1e-4, no_wd=False,
                  prefix=None):
    """The (Horovod) Trainer; with ``no_wd`` biases and BN gamma/beta get no weight decay."""
    params = net.collect_params()
    if no_wd:
        for p in net.collect_params(".*beta|.*gamma|.*bias").values():
            p.wd_mult = 0.0
    return dist.trainer(params, optimizer, {"learning_rate": lr, "momentum": momentum,
                                            "wd": wd}, prefix)


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


def _check_model_and_device(cfg, dist):
    if cfg.model.lower() not in list_models():
        get_model(cfg.model)  # raises the registry's sentence naming the known models
    if cfg.dtype == "float16" and dist.ctx.device_type != "gpu":
        raise UserError("--dtype float16 needs a GPU (MXNet AMP has no fp16 CPU kernels); use "
                        "--dtype float32 on CPU.")
    check_fits_in_memory(cfg.batch_size, cfg.input_size, dist.ctx, training=True)


def agree_on_resume(cfg, dist, run):
    """The :class:`~.checkpoint.ResumePoint`, decided by rank 0 and the same on every rank;
    every rank checks that it sees the same checkpoint files (by sha1)."""
    error, point = None, None
    if dist.is_root:
        try:
            point = resolve_resume(cfg, run)
        except UserError as err:
            error = err
    if dist.failed_ranks(error is None, "resume.decide"):
        raise error or UserError("rank 0 could not decide where to resume (its message says "
                                 "why).")
    point = dist.broadcast_object(point, "resume.point")
    ok = True
    for key in ("params", "states"):
        path = getattr(point, key)
        if path:
            want = point.record.get(f"{key}_sha1") if point.record else None
            ok = ok and os.path.isfile(path) and (want is None or sha1_file(path) == want)
    bad = dist.failed_ranks(ok, "resume.files")
    if bad:
        raise UserError(f"rank(s) {', '.join(map(str, bad))} cannot read the checkpoint "
                        f"{point.params} that rank 0 resumes from, or read another version of "
                        "it (node-local disks or a lagging shared file system); make the same "
                        "file visible to every rank.")
    return point


def _loaders(cfg, dist, data, mon):
    from ..data import eval_loader, eval_transform, train_loader
    backend = cfg.loader_backend
    if backend == "auto" and dist.size > 1 and sorted_by_label(data.rec_train):
        # The C++ reader hands each rank a contiguous block of the file; on a class-ordered
        # file that gives each rank a few classes per epoch: use the Python loader's shuffle.
        backend = "python"
        mon.info(f"{data.rec_train} is ordered by class: using the Python loader's global "
                 "shuffle (pack with im2rec.py --shuffle to use the faster C++ reader).")
    train = train_loader(data.rec_train, cfg.batch_size, input_size=cfg.input_size,
                         rank=dist.rank, num_ranks=dist.size, seed=cfg.seed,
                         num_workers=cfg.data_nthreads, jitter=cfg.jitter,
                         lighting=cfg.lighting, auto_aug=cfg.auto_aug, ctx=dist.ctx,
                         backend=backend, min_area=cfg.min_random_area,
                         mirror=not cfg.no_mirror)
    # In-training evaluation crops like verify.py at the training size.
    transform = eval_transform(cfg.model, crop_size=cfg.input_size, crop_ratio=cfg.crop_ratio)
    val = eval_loader(data.rec_val, cfg.batch_size, transform, rank=dist.rank,
                      num_ranks=dist.size, num_workers=cfg.data_nthreads, ctx=dist.ctx)
    return train, val


def _recipe(cfg, classes, size):
    return Recipe(classes=classes, num_epochs=cfg.num_epochs,
                  base_lr=global_lr(cfg.lr, size), warmup_epochs=cfg.warmup_epochs,
                  smoothing_eps=cfg.smoothing_eps if cfg.label_smoothing else 0.0,
                  mixup_alpha=cfg.mixup_alpha if cfg.mixup else 0.0,
                  mixup_off_epoch=cfg.mixup_off_epoch, dropblock_target=cfg.dropblock_prob,
                  seed=cfg.seed, log_interval=cfg.log_interval)


def train(cfg):
    """Run the training described by ``cfg``; returns the last epoch's metrics (a dict)."""
    dist = setup_distributed(cfg.no_cuda, cfg.timeout)
    mon = Monitor(cfg.save_dir, dist.is_root, cfg.logging_file, cfg.progress)
    try:
        _check_model_and_device(cfg, dist)
        data = resolve_inputs(cfg, dist, mon.info)
        run = {"batch_size": cfg.batch_size, "lr": cfg.lr, "workers": dist.size,
               **data.fingerprints}
        point = agree_on_resume(cfg, dist, run)
        mon.watchdog = Watchdog(cfg.timeout, dist.rank).start()
        return _run(cfg, dist, mon, point, data, run)
    finally:
        if mon.watchdog is not None:
            mon.watchdog.stop()
        mon.close()


def _build(cfg, dist, mon, point, data):
    """The network and its trainer, with the starting weights and optimizer state."""
    if cfg.dtype == "float16":
        from mxnet.contrib import amp
        amp.init(target_dtype="float16")  # before the graph is built: casts inside the graph
    seed_everything(cfg.seed, 1 << 30)  # the same initial weights everywhere, then broadcast
    net = build_net(cfg.model, data.classes, dist.ctx, cfg.last_gamma, cfg.dropblock_prob,
                    cfg.final_drop, cfg.mode == "hybrid", cfg.dropblock_mode,
                    use_global_stats=cfg.freeze_backbone)
    if not point.params and (cfg.pretrained or cfg.pretrained_params):
        _start_from_weights(cfg, dist, mon, net, data)
    if cfg.freeze_backbone:
        mon.info(f"backbone frozen: {freeze_backbone(net)} parameter arrays get no gradient; "
                 "BN uses its stored statistics")
    if cfg.classifier_lr_mult != 1.0:
        set_classifier_lr_mult(net, cfg.classifier_lr_mult)
    trainer = build_trainer(net, dist, cfg.optimizer, global_lr(cfg.lr, dist.size),
                            cfg.momentum, cfg.wd, cfg.no_wd)
    load_checkpoint(net, trainer, point, dist.ctx)
    dist.broadcast_parameters(net.collect_params())
    return net, trainer


def _start_from_weights(cfg, dist, mon, net, data):
    """Fine-tuning: the published weights (--pretrained) or a .params of the architecture; the
    classifier starts afresh when the classes differ from the weights' (names, or count)."""
    from ..classes import published_classes
    from ..inference.load import checkpoint_class_names
    from ..store import get_model_file
    if cfg.pretrained_params:
        source, names = cfg.pretrained_params, checkpoint_class_names(cfg.pretrained_params)
    else:
        source, names = get_model_file(cfg.model), published_classes("imagenet").names
    other = names is not None and data.class_names is not None and names != data.class_names
    loaded, fresh = load_matching(net, source, dist.ctx, cfg.model, new_classifier=other)
    mon.info(f"started from {source}: {len(loaded)} parameter arrays loaded"
             + (f", {len(fresh)} re-initialised ({', '.join(fresh)}: other classes)"
                if fresh else ""))


def _saver(cfg, dist, net, trainer, data, run, scaler):
    """``save(epoch, step=None)`` writing a checkpoint on rank 0 (every rank first takes the
    one model, :func:`~.engine.sync_replicas`); a mid-epoch save replaces the previous one."""
    def save(epoch, step=None):
        sync_replicas(net, trainer, dist)
        if not dist.is_root:
            return
        record = {"resume_epoch": epoch if step else epoch + 1, "resume_step": step or 0,
                  "run": run, "class_names": data.class_names,
                  "eval": {"crop_size": cfg.input_size, "crop_ratio": cfg.crop_ratio},
                  "loss_scaler": scaler.state_dict()}
        paths = save_checkpoint(cfg.save_dir, cfg.model, net, trainer, record, epoch, step)
        remove_step_checkpoints(cfg.save_dir, cfg.model, keep=paths["json"])
    return save


def _evaluation_copy(cfg, dist, net, data):
    """``eval_net()``: a second instance of the network holding the training weights' current
    values, for evaluation.

    Evaluating the training network itself made the next epoch depend on thread timing
    (measured: the same run, repeated under load, differed after the first evaluation, never
    without one or with oneDNN off): oneDNN's inference kernels convert the weights they read
    to their own layout, in place. The copy takes those conversions; the weights being
    trained are only read.
    """
    holder = {}

    def eval_net():
        if "net" not in holder:
            holder["net"] = build_net(cfg.model, data.classes, dist.ctx, final_drop=cfg.final_drop,
                                      hybridize=cfg.mode == "hybrid")
        copy = holder["net"]._collect_params_with_prefix()
        for name, param in net._collect_params_with_prefix().items():
            copy[name].set_data(param.data())
        return holder["net"]
    return eval_net


def _run(cfg, dist, mon, point, data, run):
    net, trainer = _build(cfg, dist, mon, point, data)
    scaler = LossScaler(dynamic=cfg.dtype == "float16")
    if point.record:
        scaler.load_state_dict(point.record.get("loss_scaler"))
    train_data, val_data = _loaders(cfg, dist, data, mon)
    recipe = _recipe(cfg, data.classes, dist.size)
    save = _saver(cfg, dist, net, trainer, data, run, scaler)
    eval_net = _evaluation_copy(cfg, dist, net, data)
    mon.truncate(point.start_epoch, point.start_step)
    mon.save_config(dict(dataclasses.asdict(cfg), workers=dist.size, classes_resolved=data.classes,
                         rec_train_resolved=data.rec_train, rec_val_resolved=data.rec_val,
                         train_samples=data.train_samples, val_samples=data.val_samples,
                         global_lr=recipe.base_lr, steps_per_epoch=len(train_data),
                         start_epoch=point.start_epoch, start_step=point.start_step,
                         context=str(dist.ctx)))
    mon.info(f"{cfg.model}: {data.classes} classes, {data.train_samples} training / "
             f"{data.val_samples} validation images, {dist.size} worker(s) on {dist.ctx}, "
             f"global LR {recipe.base_lr:g}, {len(train_data)} steps/epoch, epochs "
             f"{point.start_epoch}..{cfg.num_epochs - 1}"
             + (f" (from step {point.start_step})" if point.start_step else ""))
    stats, started = {}, time.perf_counter()
    for epoch in range(point.start_epoch, cfg.num_epochs):
        start = point.start_step if epoch == point.start_epoch else 0
        mon.epoch_begin(epoch, len(train_data) - start)
        stats = train_epoch(net, trainer, dist, train_data, recipe, epoch, scaler, mon,
                            start_step=start, save_every=cfg.save_interval_steps, save=save)
        last = epoch + 1 == cfg.num_epochs
        if last or (cfg.save_frequency and (epoch + 1) % cfg.save_frequency == 0):
            save(epoch)                                     # before evaluating: never lost
        else:
            sync_replicas(net, trainer, dist)
        if last or (cfg.eval_frequency and (epoch + 1) % cfg.eval_frequency == 0):
            stats.update(evaluate(eval_net(), val_data, dist,
                                  progress=lambda *_: mon.beat()).metrics())
        done = epoch + 1 - point.start_epoch
        eta = (time.perf_counter() - started) / done * (cfg.num_epochs - epoch - 1)
        mon.epoch_end(epoch, stats, eta)
    trace = trace_path(dist.rank, ".params")
    if trace:
        net.save_parameters(trace)
    mon.finish()
    return stats
