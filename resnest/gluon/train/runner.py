"""A whole training run from a :class:`TrainConfig`: set-up, epochs, evaluation, checkpoints."""
import dataclasses
import time

import mxnet as mx
import numpy as np

from ..evaluate import evaluate
from ..registry import get_model, list_models
from ..utils.distributed import Watchdog, setup_distributed
from ..utils.errors import UserError
from ..utils.seed import seed_everything
from .checkpoint import load_checkpoint, resolve_resume, save_checkpoint
from .engine import LossScaler, Recipe, sync_bn_stats, train_epoch
from .monitor import Monitor
from .schedule import global_lr

__all__ = ["train", "check_inputs", "build_net", "build_trainer"]


def check_inputs(cfg, size, ctx):
    """Validate what can only be checked against files and hardware; returns
    ``(train_info, val_info, classes)``. Raises :class:`UserError` (one sentence)."""
    from ..data import rec_info
    if cfg.model.lower() not in list_models():
        get_model(cfg.model)  # raises the registry's sentence naming the known models
    train_info, val_info = rec_info(cfg.rec_train), rec_info(cfg.rec_val)
    classes = cfg.classes or max(train_info.classes, val_info.classes)
    if classes < max(train_info.classes, val_info.classes):
        raise UserError(f"--classes {classes} is smaller than the {train_info.classes} classes "
                        f"in {cfg.rec_train}; drop --classes to read it from the data.")
    if cfg.batch_size * size > train_info.num_samples:
        raise UserError(f"--batch-size {cfg.batch_size} x {size} worker(s) is larger than the "
                        f"{train_info.num_samples} images in {cfg.rec_train}; use a smaller "
                        "--batch-size.")
    if cfg.dtype == "float16" and ctx.device_type != "gpu":
        raise UserError("--dtype float16 needs a GPU (MXNet AMP has no fp16 CPU kernels); use "
                        "--dtype float32 on CPU.")
    return train_info, val_info, classes


def build_net(model, classes, ctx, last_gamma=False, dropblock_prob=0.0, final_drop=None,
              hybridize=True, dropblock_mode="batch"):
    """The model, Xavier-initialised (gaussian, in, magnitude 2) on ``ctx``."""
    kw = {} if final_drop is None else {"final_drop": final_drop}
    net = get_model(model, classes=classes, last_gamma=last_gamma,
                    dropblock_prob=dropblock_prob, dropblock_mode=dropblock_mode, **kw)
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


def choose_backend(backend, rec_path, size):
    """The C++ reader hands each rank a contiguous block of the file; on a class-ordered file
    that gives each rank a few classes per epoch, so use the Python loader's global shuffle."""
    if backend == "auto" and size > 1 and sorted_by_label(rec_path):
        return "python"
    return backend


def _loaders(cfg, dist, mon):
    from ..data import eval_loader, eval_transform, train_loader
    backend = choose_backend(cfg.loader_backend, cfg.rec_train, dist.size)
    if backend != cfg.loader_backend:
        mon.info(f"{cfg.rec_train} is ordered by class: using the Python loader's global "
                 "shuffle (pack with im2rec.py --shuffle to use the faster C++ reader).")
    train = train_loader(cfg.rec_train, cfg.batch_size, input_size=cfg.input_size,
                         rank=dist.rank, num_ranks=dist.size, seed=cfg.seed,
                         num_workers=cfg.data_nthreads, jitter=cfg.jitter,
                         lighting=cfg.lighting, auto_aug=cfg.auto_aug, ctx=dist.ctx,
                         backend=backend, min_area=cfg.min_random_area,
                         mirror=not cfg.no_mirror)
    # In-training evaluation crops like verify.py at the training size.
    transform = eval_transform(cfg.model, crop_size=cfg.input_size, crop_ratio=cfg.crop_ratio)
    val = eval_loader(cfg.rec_val, cfg.batch_size, transform, rank=dist.rank,
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
    train_info, val_info, classes = check_inputs(cfg, dist.size, dist.ctx)
    point = resolve_resume(cfg.save_dir, cfg.model, cfg.resume, cfg.resume_epoch,
                           cfg.resume_params, cfg.resume_states)
    watchdog = Watchdog(cfg.timeout, dist.rank).start()
    mon = Monitor(cfg.save_dir, dist.is_root, cfg.logging_file, cfg.progress, watchdog)
    try:
        return _run(cfg, dist, mon, point, classes, train_info, val_info)
    finally:
        watchdog.stop()
        mon.close()


def _run(cfg, dist, mon, point, classes, train_info, val_info):
    if cfg.dtype == "float16":
        from mxnet.contrib import amp
        amp.init(target_dtype="float16")  # before the graph is built: casts inside the graph
    seed_everything(cfg.seed, 1 << 30)  # the same initial weights everywhere, then broadcast
    net = build_net(cfg.model, classes, dist.ctx, cfg.last_gamma, cfg.dropblock_prob,
                    cfg.final_drop, cfg.mode == "hybrid", cfg.dropblock_mode)
    trainer = build_trainer(net, dist, cfg.optimizer, global_lr(cfg.lr, dist.size),
                            cfg.momentum, cfg.wd, cfg.no_wd)
    load_checkpoint(net, trainer, point, dist.ctx)
    dist.broadcast_parameters(net.collect_params())
    scaler = LossScaler(dynamic=cfg.dtype == "float16")
    if point.record:
        scaler.load_state_dict(point.record.get("loss_scaler"))
    train_data, val_data = _loaders(cfg, dist, mon)
    recipe = _recipe(cfg, classes, dist.size)
    mon.truncate(point.start_epoch)
    mon.save_config(dict(dataclasses.asdict(cfg), workers=dist.size, classes_resolved=classes,
                         train_samples=train_info.num_samples,
                         val_samples=val_info.num_samples, global_lr=recipe.base_lr,
                         steps_per_epoch=len(train_data), start_epoch=point.start_epoch,
                         context=str(dist.ctx)))
    mon.info(f"{cfg.model}: {classes} classes, {train_info.num_samples} training / "
             f"{val_info.num_samples} validation images, {dist.size} worker(s) on "
             f"{dist.ctx}, global LR {recipe.base_lr:g}, {len(train_data)} steps/epoch, "
             f"epochs {point.start_epoch}..{cfg.num_epochs - 1}")
    stats, started = {}, time.perf_counter()
    for epoch in range(point.start_epoch, cfg.num_epochs):
        mon.epoch_begin(epoch, len(train_data))
        stats = train_epoch(net, trainer, dist, train_data, recipe, epoch, scaler, mon)
        sync_bn_stats(net, dist)
        last = epoch + 1 == cfg.num_epochs
        if last or (cfg.eval_frequency > 0 and (epoch + 1) % cfg.eval_frequency == 0):
            stats.update(evaluate(net, val_data, dist,
                                  progress=lambda *_: mon.beat()).metrics())
        done = epoch + 1 - point.start_epoch
        eta = (time.perf_counter() - started) / done * (cfg.num_epochs - epoch - 1)
        mon.epoch_end(epoch, stats, eta)
        if dist.is_root and (last or (cfg.save_frequency > 0
                                      and (epoch + 1) % cfg.save_frequency == 0)):
            save_checkpoint(cfg.save_dir, cfg.model, epoch, net, trainer, {
                "step": (epoch + 1) * len(train_data), "steps_per_epoch": len(train_data),
                "workers": dist.size, "config": dataclasses.asdict(cfg), "metrics": stats,
                "loss_scaler": scaler.state_dict()})
        mon.beat()
    mon.finish()
    return stats

