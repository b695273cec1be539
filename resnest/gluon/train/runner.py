"""A whole training run of any task: set-up, epochs, checkpoints, evaluation.

The task (:class:`~.classification.ClassificationTask`, the segmentation and detection tasks)
supplies the data, the model, the recipe and the evaluation; everything else is here, once:

* the run folder is owned by one run (:class:`~resnest.gluon.utils.outputs.OutputLock`,
  held by rank 0 while it runs): a second run into it is refused, a new run into a folder that
  holds an earlier run is refused unless ``--resume`` (continue it) or ``--force`` (replace
  it), and every checkpoint record carries the run's identity;
* where a resumed run starts is decided by rank 0 and sent to every rank, every rank checks
  the files it loads against the checkpoint's record (:mod:`.resume`);
* order of an epoch: train, give every rank the same model (BN statistics averaged, rank 0's
  weights and optimizer state), write the checkpoint (when due), then evaluate, so a failing
  evaluation never costs the epoch.
"""
import contextlib
import dataclasses
import glob
import os
import re
import time
import uuid

import mxnet as mx

from ..checkpoint import CheckpointRecord, checkpoint_paths, write_checkpoint
from ..models import model_task
from ..utils.distributed import Watchdog, setup_distributed
from ..utils.errors import UserError
from ..utils.io import sweep_stale_temps
from ..utils.memory import check_fits_in_memory
from ..utils.outputs import OutputLock
from ..utils.seed import seed_everything
from .classification import ClassificationTask
from .engine import LossScaler, sync_replicas, train_epoch
from .monitor import Monitor
from .resume import agree_on_resume, apply_overrides, load_checkpoint
from .schedule import global_lr

__all__ = ["train", "run", "build_trainer", "run_files"]


def build_trainer(net, dist, optimizer="nag", lr=0.1, momentum=0.9, wd=1e-4, no_wd=False,
                  prefix=None):
    """The (Horovod) Trainer; with ``no_wd`` biases and BN gamma/beta get no weight decay."""
    params = net.collect_params()
    if no_wd:
        for p in net.collect_params(".*beta|.*gamma|.*bias").values():
            p.wd_mult = 0.0
    return dist.trainer(params, optimizer, {"learning_rate": lr, "momentum": momentum,
                                            "wd": wd}, prefix)


_RUN_FILES = ("metrics.jsonl", "config.json", "curves.png")
_CHECKPOINT = re.compile(r"^[a-z-]+-.+-\d+(-step\d+)?\.(json|params|states)$")


def run_files(folder, logging_file="train.log"):
    """The files of an earlier run in ``folder``: its checkpoints, metrics, config, log."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    keep = set(_RUN_FILES) | {logging_file}
    return sorted(os.path.join(folder, n) for n in names if n in keep or _CHECKPOINT.match(n))


def _claim_folder(cfg, dist, log):
    """Rank 0 takes the run folder (see the module doc); returns the lock (None elsewhere)."""
    error, lock = None, None
    if dist.is_root:
        try:
            lock = OutputLock(cfg.save_dir, what=f"--save-dir {cfg.save_dir}").acquire()
            sweep_stale_temps(cfg.save_dir)         # of a killed earlier run
            earlier = run_files(cfg.save_dir, cfg.logging_file)
            if earlier and not cfg.resume and not (cfg.resume_params or cfg.resume_states):
                if not cfg.force:
                    raise UserError(f"--save-dir {cfg.save_dir} holds an earlier run "
                                    f"({len(earlier)} files, e.g. {os.path.basename(earlier[0])}"
                                    "); continue it with --resume, replace it with --force, or "
                                    "choose another folder.")
                for path in earlier:
                    os.remove(path)
                log(f"--force: removed the earlier run in {cfg.save_dir} ({len(earlier)} files)")
        except UserError as err:
            error = err
            if lock is not None:
                lock.release()
    if dist.failed_ranks(error is None, "run.folder"):
        raise error or UserError(f"rank 0 cannot use --save-dir {cfg.save_dir} (its message "
                                 "says why).")
    return lock


def _check_model_and_device(cfg, task, dist):
    if model_task(cfg.model) != task.name:
        raise UserError(f"--model {cfg.model} is a {model_task(cfg.model)} model; this script "
                        f"trains {task.name} models.")
    if cfg.dtype == "float16" and dist.ctx.device_type != "gpu":
        raise UserError("--dtype float16 needs a GPU (MXNet AMP has no fp16 CPU kernels); use "
                        "--dtype float32 on CPU.")
    size = getattr(cfg, "input_size", None) or getattr(cfg, "crop_size", 224)
    check_fits_in_memory(cfg.batch_size, size, dist.ctx, training=True)


def train(cfg, task=None):
    """Run the training described by ``cfg`` (a classification run unless ``task`` says
    otherwise); returns the last epoch's metrics (a dict)."""
    task = task or ClassificationTask(cfg)
    dist = setup_distributed(cfg.no_cuda, cfg.timeout)
    _check_model_and_device(cfg, task, dist)
    lock = _claim_folder(cfg, dist, print)
    mon = Monitor(cfg.save_dir, dist.is_root, cfg.logging_file, cfg.progress, task=task)
    try:
        return run(cfg, task, dist, mon)
    finally:
        if mon.watchdog is not None:
            mon.watchdog.stop()
        mon.close()
        if lock is not None:
            lock.release()


def run(cfg, task, dist, mon):
    """The run itself, in a claimed folder with its monitor (see :func:`train`)."""
    data = task.prepare(dist, mon.info)
    identity = task.run_identity(data, dist)
    point = agree_on_resume(cfg, dist, identity, task.name)
    run_id = point.record.run_id if point.record and point.record.run_id else \
        dist.broadcast_object(uuid.uuid4().hex, "run.id")
    before = point.record.config.get("num_epochs") if point.record else None
    if before not in (None, cfg.num_epochs):
        mon.info(f"--num-epochs {before} -> {cfg.num_epochs}: the LR schedule of the resumed run "
                 f"now ends after epoch {cfg.num_epochs - 1}")
    mon.watchdog = Watchdog(cfg.timeout, dist.rank).start()
    net, trainer = _build(cfg, task, dist, mon, point, data)
    scaler = LossScaler(dynamic=cfg.dtype == "float16")
    if point.record:
        scaler.load_state_dict(point.record.loss_scaler)
    train_data, val_data = task.loaders(dist, data, mon.info)
    recipe = task.recipe(data, dist.size)
    save = _saver(cfg, task, dist, net, trainer, data, identity, run_id, scaler)
    eval_net = evaluation_copy(task, dist, net, data)
    mon.truncate(point.start_epoch, point.start_step)
    mon.save_config(dict(dataclasses.asdict(cfg), run_id=run_id, task=task.name,
                         workers=dist.size, classes_resolved=data.classes,
                         train_samples=data.train_samples, val_samples=data.val_samples,
                         global_lr=global_lr(cfg.lr, dist.size),
                         steps_per_epoch=len(train_data), start_epoch=point.start_epoch,
                         start_step=point.start_step, context=str(dist.ctx)))
    mon.info(f"{cfg.model}: {task.describe(data)}, {dist.size} worker(s) on {dist.ctx}, global "
             f"LR {global_lr(cfg.lr, dist.size):g}, {len(train_data)} steps/epoch, epochs "
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
            stats.update(task.evaluate(eval_net(), val_data, dist,
                                       progress=lambda *_: mon.beat()))
        done = epoch + 1 - point.start_epoch
        eta = (time.perf_counter() - started) / done * (cfg.num_epochs - epoch - 1)
        mon.epoch_end(epoch, stats, eta)
    mon.finish()
    return stats


def _build(cfg, task, dist, mon, point, data):
    """The network and its trainer, with the starting weights and optimizer state."""
    if cfg.dtype == "float16":
        from mxnet.contrib import amp
        amp.init(target_dtype="float16")  # before the graph is built: casts inside the graph
    seed_everything(cfg.seed, 1 << 30)  # the same initial weights everywhere, then broadcast
    net = task.build_net(data, dist.ctx)
    if not point.params and cfg.starts_from_weights:
        task.start_from_weights(net, data, dist.ctx, mon.info)
    task.adjust_net(net, mon.info)
    trainer = build_trainer(net, dist, cfg.optimizer, global_lr(cfg.lr, dist.size),
                            cfg.momentum, cfg.wd, cfg.no_wd)
    ok, error = True, None
    try:
        load_checkpoint(net, trainer, point, dist.ctx)
        if point.states:
            apply_overrides(trainer, cfg)
    except UserError as err:
        ok, error = False, err
    bad = dist.failed_ranks(ok, "resume.load")
    if bad:
        raise error or UserError(f"rank(s) {', '.join(map(str, bad))} cannot read the "
                                 f"checkpoint {point.params} that rank 0 resumes from, or read "
                                 "another version of it (node-local disks or a lagging shared "
                                 "file system); make the same file visible to every rank.")
    dist.broadcast_parameters(net.collect_params())
    return net, trainer


def _saver(cfg, task, dist, net, trainer, data, identity, run_id, scaler):
    """``save(epoch, step=None)`` writing a checkpoint on rank 0 (every rank first takes the
    one model, :func:`~.engine.sync_replicas`); a mid-epoch save replaces the previous one."""
    config = dataclasses.asdict(cfg)

    def save(epoch, step=None):
        sync_replicas(net, trainer, dist)
        if not dist.is_root:
            return
        record = CheckpointRecord(model=cfg.model, epoch=epoch, step=step, task=task.name,
                                  run_id=run_id, config=config, run=identity,
                                  class_names=data.class_names, eval=task.eval_settings(),
                                  loss_scaler=scaler.state_dict())
        paths = write_checkpoint(cfg.save_dir, record, _array_writer(net.save_parameters),
                                 _array_writer(trainer.save_states))
        _remove_step_checkpoints(cfg.save_dir, cfg.model, task.name, keep=paths["json"])
    return save


def _array_writer(save):
    """``save(path)`` with MXNet's full-disk error turned into the OSError it is."""
    def write(path):
        try:
            save(path)
        except mx.base.MXNetError as err:              # MXNet reports a full disk this way
            if "Write incomplete" in str(err):
                raise OSError(28, "No space left on device (or the file size limit)", path) \
                    from None
            raise
    return write


def _remove_step_checkpoints(folder, model, task, keep):
    """Delete the mid-epoch checkpoints but the one whose JSON is ``keep`` (by name, nothing
    hashed). The JSON goes first, so a half-deleted checkpoint never looks complete; a kill
    right after it leaves a ``.params``/``.states`` pair, which the next call finds by name."""
    keep_stem = os.path.abspath(keep)[:-len(".json")]
    stem = checkpoint_paths(folder, model, 0, 0, task)["json"][:-len("-0-step0.json")]
    stems = set()
    for path in glob.glob(glob.escape(stem) + "-*-step*.*"):
        base, ext = os.path.splitext(os.path.abspath(path))
        tail = base[len(os.path.abspath(stem)):]
        if ext in (".json", ".params", ".states") and re.fullmatch(r"-\d+-step\d+", tail):
            stems.add(base)
    for base in sorted(stems - {keep_stem}):
        for ext in (".json", ".params", ".states"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(base + ext)


def evaluation_copy(task, dist, net, data):
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
            holder["net"] = task.build_net(data, dist.ctx, training=False)
        copy = holder["net"]._collect_params_with_prefix()
        for name, param in net._collect_params_with_prefix().items():
            copy[name].set_data(param.data())
        return holder["net"]
    return eval_net

