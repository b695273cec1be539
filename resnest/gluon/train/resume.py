"""Where a run starts, and proof that a resumed checkpoint is the one it claims to be.

``--resume`` continues the newest checkpoint of the run in ``--save-dir`` (by name, then its
record: :mod:`resnest.gluon.checkpoint`). It is refused, in one sentence, when:

* the newest checkpoint's record is damaged (never a silent fall-back to an older one);
* a setting that defines the run changed (the optimizer, weight decay, momentum, the recipe,
  the model, the data, the batch size, the number of workers...; every field of the config
  that is not operational, :func:`~.config.operational_fields`), unless
  ``--resume-override``, and then the new values apply (:func:`apply_overrides`); the
  optimizer itself can never change, since its saved state belongs to it;
* the newest checkpoint is inside an epoch and the workers or batch size changed (the rest
  of that epoch's order depends on both): the newest end-of-epoch checkpoint is used with
  ``--resume-override``.

The authors' ``--resume-params/--resume-states/--resume-epoch`` load the files given; a
``.states`` that does not fit the weights (another run's) is refused before the first step.
Rank 0 decides and sends the decision to every rank; every rank checks the files against the
record while loading them.
"""
import dataclasses
import os
import pickle
from dataclasses import dataclass
from typing import Optional

from ..checkpoint import (CheckpointRecord, list_checkpoints, load_params_verified, read_record,
                          read_verified)
from ..utils.errors import UserError
from .config import operational_fields

__all__ = ["ResumePoint", "resolve_resume", "agree_on_resume", "config_changes",
           "apply_overrides", "load_checkpoint"]


@dataclass
class ResumePoint:
    """Where training starts: epoch and step, the files to load (or None) and their record."""
    start_epoch: int = 0
    start_step: int = 0
    params: Optional[str] = None
    states: Optional[str] = None
    record: Optional[CheckpointRecord] = None


_RUN_LABELS = {"batch_size": "batch size", "lr": "LR per worker", "workers": "workers",
               "train_data": "training data", "val_data": "validation data"}
# What fixes the order of an epoch's samples: a mid-epoch checkpoint needs both unchanged.
_LAYOUT_KEYS = ("batch_size", "workers")
# Settings a resume can never change: the saved optimizer state belongs to them.
_FIXED = ("optimizer", "model")


def _differences(before, now, keys, label=lambda k: k):
    return [f"{label(key)} {before.get(key)!r} -> {now.get(key)!r}" for key in keys
            if key in before and before.get(key) != now.get(key)]


def config_changes(record, cfg, run):
    """Sentences like ``'wd 0.0001 -> 0.0005'`` for every setting that defines the run and
    differs between the checkpoint's record and this run (``cfg`` and its ``run`` identity)."""
    now = dataclasses.asdict(cfg)
    keys = [k for k in sorted(now) if k not in operational_fields(type(cfg))]
    changes = _differences(record.config, now, keys, lambda k: "--" + k.replace("_", "-"))
    return changes + _differences(record.run, run, list(_RUN_LABELS), _RUN_LABELS.get)


def _newest(cfg, task):
    found = list_checkpoints(cfg.save_dir, cfg.model, task)
    if not found:
        raise UserError(f"--resume found no checkpoint of {cfg.model} in {cfg.save_dir!r}; "
                        "start without --resume, or point --save-dir at a run's folder.")
    return found


def resolve_resume(cfg, run, task="classification"):
    """Decide where to start (call on rank 0; :func:`agree_on_resume` sends the answer to the
    others). See the module doc."""
    if not cfg.resume:
        for flag, path in (("--resume-params", cfg.resume_params),
                           ("--resume-states", cfg.resume_states)):
            if path and not os.path.isfile(path):
                raise UserError(f"{flag} {path!r} does not exist; give an existing checkpoint "
                                "file.")
        return ResumePoint(cfg.resume_epoch, 0, cfg.resume_params or None,
                           cfg.resume_states or None)
    found = _newest(cfg, task)
    record = read_record(found[0][0])                  # damaged: refused, never skipped
    fixed = [c for c in _differences(record.config, dataclasses.asdict(cfg), _FIXED)]
    if fixed:
        raise UserError(f"the run in {cfg.save_dir} used other {', '.join(_FIXED)} "
                        f"({'; '.join(fixed)}); its checkpoints cannot continue with these.")
    changes = config_changes(record, cfg, run)
    if changes and not cfg.resume_override:
        raise UserError(f"the run in {cfg.save_dir} differs from this one ({'; '.join(changes)})"
                        "; resume with the same settings, or pass --resume-override to go on "
                        "with the new ones.")
    layout = _differences(record.run, run, _LAYOUT_KEYS, _RUN_LABELS.get)
    path = found[0][0]
    if record.step and layout:
        ends = [p for p, _, step in found if step is None]
        if not ends:
            raise UserError(f"the only checkpoints in {cfg.save_dir} are inside epoch "
                            f"{record.epoch}, whose order depends on the workers and the batch "
                            f"size ({'; '.join(layout)}); resume with the old ones.")
        path = ends[0]
        record = read_record(path)
    stem = path[:-len(".json")]
    return ResumePoint(record.resume_epoch, record.resume_step, stem + ".params",
                       stem + ".states", record)


def agree_on_resume(cfg, dist, run, task="classification"):
    """The :class:`ResumePoint`, decided by rank 0 and the same on every rank."""
    error, point = None, None
    if dist.is_root:
        try:
            point = resolve_resume(cfg, run, task)
        except UserError as err:
            error = err
    if dist.failed_ranks(error is None, "resume.decide"):
        raise error or UserError("rank 0 could not decide where to resume (its message says "
                                 "why).")
    return dist.broadcast_object(point, "resume.point")


def apply_overrides(trainer, cfg):
    """After loading a checkpoint's optimizer state (which brings its own weight decay and
    momentum): the settings of this run apply (``--resume-override``; unchanged otherwise)."""
    optimizer = trainer._optimizer
    optimizer.wd = cfg.wd
    if hasattr(optimizer, "momentum"):
        optimizer.momentum = cfg.momentum


def _check_states_fit(states, trainer, path):
    """Refuse optimizer states whose arrays do not fit the trainer's parameters."""
    try:
        saved = pickle.loads(states)
        saved = saved[0] if isinstance(saved, tuple) else saved
    except Exception:                               # noqa: BLE001 - any unpickling failure
        raise UserError(f"{path} is not an optimizer states file.") from None
    params = trainer._params
    for index, state in saved.items():
        arrays = state if isinstance(state, (list, tuple)) else [state]
        shapes = {tuple(a.shape) for a in arrays if hasattr(a, "shape")}
        if not isinstance(index, int) or index >= len(params) \
                or (shapes and shapes != {tuple(params[index].shape)}):
            raise UserError(f"{path} holds the optimizer state of another model or run (it "
                            "does not fit the weights); give the .states saved with them.")


def load_checkpoint(net, trainer, point, ctx):
    """Load the weights and optimizer state of a :class:`ResumePoint` (every rank), each file
    checked against the record while it is read; the authors' files without a record are
    checked against the model (names, shapes)."""
    record = point.record
    if point.params:
        arrays = load_params_verified(point.params, record.params_sha1 if record else None)
        _set_params(net, arrays, point.params, ctx)
    if point.states:
        states = read_verified(point.states, record.states_sha1 if record else None)
        _check_states_fit(states, trainer, point.states)
        _load_states(trainer, states)


def _load_states(trainer, states):
    """``Trainer.load_states`` from bytes already read (and checked) instead of a file name:
    the same steps as MXNet 1.9's, for a trainer that updates locally (ours, plain or
    Horovod's, have no kvstore)."""
    if not trainer._kv_initialized:
        trainer._init_kvstore()
    if trainer._params_to_init:
        trainer._init_params()
    if trainer._update_on_kvstore:
        raise UserError("checkpoints are loaded into trainers that update locally; this one "
                        "updates on a kvstore.")
    for updater in trainer._updaters:
        updater.set_states(states)
        updater.optimizer = trainer._updaters[0].optimizer
    trainer._optimizer = trainer._updaters[0].optimizer
    trainer._optimizer.param_dict = {i: p for i, p in enumerate(trainer._params)}


def _set_params(net, arrays, path, ctx):
    params = net._collect_params_with_prefix()
    missing, extra = sorted(set(params) - set(arrays)), sorted(set(arrays) - set(params))
    wrong = sorted(k for k in set(params) & set(arrays)
                   if tuple(params[k].shape) != tuple(arrays[k].shape))
    if missing or extra or wrong:
        example = (missing or extra or wrong)[0]
        raise UserError(f"cannot load checkpoint {path}: it does not fit the model "
                        f"({len(missing)} missing, {len(extra)} unknown, {len(wrong)} of other "
                        f"shape, e.g. {example}); check it matches --model and --classes.")
    for name, param in params.items():
        param.set_data(arrays[name].as_in_context(ctx))
