"""Checkpoints that survive a ``kill -9`` or a full disk, and where a resumed run continues.

Names: ``imagenet-{model}-{epoch}.params/.states/.json`` after an epoch (the published names),
``imagenet-{model}-{epoch}-step{step}.*`` inside one (``--save-interval-steps``). The three
files are written as one group through :mod:`resnest.gluon.utils.io` (temporary names, fsync,
renames, the JSON last): the JSON records the sha1 of the other two, so a checkpoint counts as
complete only when its JSON exists and both files match it. A process killed at any moment, or
a disk that fills up, leaves the previous checkpoints intact and no file that looks complete.

The JSON also says where training continues (``resume_epoch``, ``resume_step``) and what the
run was (config, number of workers, steps per epoch, the data's fingerprint, class names), so
``--resume`` can refuse to continue a different run.
"""
import contextlib
import glob
import json
import os
import re
from dataclasses import dataclass
from typing import Optional

from ..utils.checksum import sha1_file
from ..utils.errors import UserError
from ..utils.io import atomic_group

__all__ = ["checkpoint_paths", "save_checkpoint", "find_checkpoints", "remove_step_checkpoints",
           "ResumePoint", "resolve_resume", "compare_runs", "load_checkpoint"]

_NAME = re.compile(r"imagenet-(?P<model>.+)-(?P<epoch>\d+)(?:-step(?P<step>\d+))?\.json$")


def checkpoint_paths(save_dir, model, epoch, step=None):
    """``{'params', 'states', 'json'}`` paths of the checkpoint after ``epoch`` (0-based), or
    after ``step`` steps of it."""
    stem = os.path.join(save_dir, f"imagenet-{model}-{epoch}" +
                        (f"-step{step}" if step is not None else ""))
    return {"params": stem + ".params", "states": stem + ".states", "json": stem + ".json"}


def _write_array_file(save, path):
    import mxnet as mx
    try:
        save(path)
    except mx.base.MXNetError as err:                  # MXNet reports a full disk this way
        if "Write incomplete" in str(err):
            raise OSError(28, "No space left on device (or the file size limit)", path) \
                from None
        raise


def save_checkpoint(save_dir, model, net, trainer, record, epoch, step=None):
    """Write a checkpoint (rank 0 only): weights, optimizer state and the JSON ``record`` (with
    the epoch, step and both files' sha1 added), as one group. Returns the paths.

    Raises
    ------
    UserError
        The folder cannot be written (full disk, no permission); the previous checkpoints are
        unchanged and no part of this one is left behind.
    """
    try:
        os.makedirs(save_dir, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create --save-dir {save_dir}: {err.strerror}.") from None
    paths = checkpoint_paths(save_dir, model, epoch, step)
    with atomic_group([paths["params"], paths["states"], paths["json"]]) as tmp:
        params, states = tmp[os.path.abspath(paths["params"])], tmp[os.path.abspath(paths["states"])]
        _write_array_file(net.save_parameters, params)
        _write_array_file(trainer.save_states, states)
        record = dict(record, model=model, epoch=epoch, step=step,
                      params_sha1=sha1_file(params), states_sha1=sha1_file(states))
        with open(tmp[os.path.abspath(paths["json"])], "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1, sort_keys=True)
    return paths


def _read_complete(json_path):
    """The JSON record of a checkpoint if it and its files are complete, else None."""
    try:
        with open(json_path, encoding="utf-8") as f:
            record = json.load(f)
        stem = json_path[:-len(".json")]
        if (sha1_file(stem + ".params") != record["params_sha1"]
                or sha1_file(stem + ".states") != record["states_sha1"]):
            return None
        record["resume_epoch"], record["resume_step"]          # written by every version
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record


def _named(save_dir, model):
    """``(json path, name match)`` of every checkpoint JSON of ``model`` in ``save_dir``, by
    name only (nothing read)."""
    pattern = os.path.join(glob.escape(save_dir), f"imagenet-{glob.escape(model)}-*.json")
    for path in glob.glob(pattern):
        m = _NAME.search(os.path.basename(path))
        if m and m.group("model") == model:
            yield path, m


def find_checkpoints(save_dir, model):
    """Complete checkpoints of ``model`` in ``save_dir`` as ``(json path, record)``, newest
    resume position first."""
    found = []
    for path, _ in _named(save_dir, model):
        record = _read_complete(path)
        if record is not None:
            found.append((path, record))
    return sorted(found, key=lambda f: (f[1]["resume_epoch"], f[1]["resume_step"]), reverse=True)


_STEP_FILE = re.compile(r"imagenet-(?P<model>.+)-\d+-step\d+\.(?:json|params|states)$")


def remove_step_checkpoints(save_dir, model, keep):
    """Delete the mid-epoch checkpoints of ``model`` in ``save_dir`` but the one whose JSON is
    ``keep``; chosen by name, so that a save does not hash every checkpoint of the run.

    Every file of such a checkpoint goes, with or without its JSON: the JSON is removed first
    (so no JSON ever names missing files), and a process killed right after it leaves a
    ``.params``/``.states`` pair that only a sweep by file name finds again."""
    keep_stem = os.path.abspath(keep)[:-len(".json")]
    pattern = os.path.join(glob.escape(save_dir), f"imagenet-{glob.escape(model)}-*-step*.*")
    stems = set()
    for path in glob.glob(pattern):
        m = _STEP_FILE.search(os.path.basename(path))
        if m and m.group("model") == model:
            stems.add(os.path.abspath(path).rsplit(".", 1)[0])
    for stem in sorted(stems - {keep_stem}):
        for ext in (".json", ".params", ".states"):          # the JSON first: never half
            with contextlib.suppress(FileNotFoundError):
                os.remove(stem + ext)


@dataclass
class ResumePoint:
    """Where training starts: epoch and step, and the files to load (or None)."""
    start_epoch: int = 0
    start_step: int = 0
    params: Optional[str] = None
    states: Optional[str] = None
    record: Optional[dict] = None


def _point(json_path, record):
    stem = json_path[:-len(".json")]
    return ResumePoint(record["resume_epoch"], record["resume_step"], stem + ".params",
                       stem + ".states", record)


_RUN_LABELS = {"batch_size": "batch size", "lr": "LR per worker", "workers": "workers",
               "train_data": "training data", "val_data": "validation data"}
# What fixes the order of an epoch's samples: a mid-epoch checkpoint needs both unchanged.
_LAYOUT_KEYS = ("batch_size", "workers")


def compare_runs(record, now, keys=tuple(_RUN_LABELS)):
    """Differences that make a resume continue another run than the checkpoint's: the
    batch size, the per-worker LR, the number of workers or the data (or only ``keys``).
    ``now`` holds the same keys as the record's ``run``. Returns sentences like
    ``'batch size 32 -> 16'``."""
    before = record.get("run", {})
    return [f"{_RUN_LABELS[key]} {before.get(key)} -> {now.get(key)}" for key in keys
            if key in before and before.get(key) != now.get(key)]


def resolve_resume(cfg, run):
    """Decide where to start (call on rank 0; the runner sends the answer to the others).

    ``--resume``: the newest complete checkpoint in ``--save-dir``; a run that differs from
    it (:func:`compare_runs` against ``run``) is refused unless ``--resume-override``. A
    checkpoint written inside an epoch continues only with the same workers and batch size
    (the rest of that epoch's order depends on both); with ``--resume-override`` the newest
    end-of-epoch checkpoint is used instead. Without ``--resume``: the authors'
    ``--resume-params/--resume-states/--resume-epoch``, or from scratch.
    """
    if not cfg.resume:
        for flag, path in (("--resume-params", cfg.resume_params),
                           ("--resume-states", cfg.resume_states)):
            if path and not os.path.isfile(path):
                raise UserError(f"{flag} {path!r} does not exist; give an existing checkpoint "
                                "file.")
        return ResumePoint(cfg.resume_epoch, 0, cfg.resume_params or None,
                           cfg.resume_states or None)
    found = find_checkpoints(cfg.save_dir, cfg.model)
    if not found:
        raise UserError(f"--resume found no complete checkpoint imagenet-{cfg.model}-*.json in "
                        f"{cfg.save_dir!r}; start without --resume or point --save-dir at a "
                        "run's folder.")
    path, record = found[0]
    changes = compare_runs(record, run)
    if changes and not cfg.resume_override:
        raise UserError(f"the run in {cfg.save_dir} differs from this one ({'; '.join(changes)})"
                        "; resume with the same settings, or pass --resume-override to go on "
                        "with the new ones.")
    layout = compare_runs(record, run, _LAYOUT_KEYS)
    if record["resume_step"] and layout:
        ends = [(p, r) for p, r in found if not r["resume_step"]]
        if not ends:
            raise UserError(f"the only checkpoints in {cfg.save_dir} are inside epoch "
                            f"{record['resume_epoch']}, whose order depends on the workers and "
                            f"the batch size ({'; '.join(layout)}); resume with the old ones.")
        path, record = ends[0]
    return _point(path, record)


def load_checkpoint(net, trainer, point, ctx):
    """Load the weights and optimizer state named by a :class:`ResumePoint` (every rank)."""
    try:
        if point.params:
            net.load_parameters(point.params, ctx=ctx)
        if point.states:
            trainer.load_states(point.states)
    except Exception as err:  # MXNet raises bare MXNetError/AssertionError on a bad file
        raise UserError(f"cannot load checkpoint {point.params or point.states!r} ({err}); "
                        "check it matches --model and --classes.") from None
