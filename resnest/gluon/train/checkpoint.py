"""Checkpoints that survive a ``kill -9``: ``imagenet-{model}-{epoch}.params/.states/.json``.

The ``.params`` and ``.states`` names are the published ones. The files are written through
:mod:`resnest.gluon.utils.io` (temporary name, fsync, rename), the JSON last: it records the
epoch, step, config, metrics and the sha1 of the other two files, so a checkpoint counts as
complete only when its JSON exists and both files match it. A process killed at any moment
leaves the previous checkpoint intact and no file that looks complete.
"""
import glob
import json
import os
import re
from dataclasses import dataclass
from typing import Optional

from ..utils.checksum import sha1_file
from ..utils.errors import UserError
from ..utils.io import atomic_group, write_json

__all__ = ["checkpoint_paths", "save_checkpoint", "find_latest", "ResumePoint",
           "resolve_resume", "load_checkpoint"]


def checkpoint_paths(save_dir, model, epoch):
    """``{'params', 'states', 'json'}`` paths of the checkpoint after ``epoch`` (0-based)."""
    stem = os.path.join(save_dir, f"imagenet-{model}-{epoch}")
    return {"params": stem + ".params", "states": stem + ".states", "json": stem + ".json"}


def save_checkpoint(save_dir, model, epoch, net, trainer, meta):
    """Write the checkpoint after ``epoch``: weights, optimizer state, then the JSON.

    ``meta`` (JSON-serialisable: step, config, metrics, ...) is stored with the epoch and the
    sha1 of both files. Call on rank 0 only. Returns the paths.
    """
    os.makedirs(save_dir, exist_ok=True)
    paths = checkpoint_paths(save_dir, model, epoch)
    with atomic_group([paths["params"], paths["states"]]) as tmp:
        net.save_parameters(tmp[os.path.abspath(paths["params"])])
        trainer.save_states(tmp[os.path.abspath(paths["states"])])
    record = dict(meta, epoch=epoch, model=model,
                  params_sha1=sha1_file(paths["params"]), states_sha1=sha1_file(paths["states"]))
    write_json(paths["json"], record)
    return paths


def _read_complete(json_path):
    """The JSON record of a checkpoint if it and its files are complete, else None."""
    try:
        with open(json_path) as f:
            record = json.load(f)
        stem = json_path[:-len(".json")]
        if (sha1_file(stem + ".params") != record["params_sha1"]
                or sha1_file(stem + ".states") != record["states_sha1"]):
            return None
    except (OSError, ValueError, KeyError):
        return None
    return record


def find_latest(save_dir, model):
    """``(epoch, record)`` of the newest complete checkpoint of ``model`` in ``save_dir``, or
    None."""
    pattern = re.compile(rf"imagenet-{re.escape(model)}-(\d+)\.json$")
    found = []
    for path in glob.glob(os.path.join(glob.escape(save_dir), f"imagenet-{model}-*.json")):
        m = pattern.search(os.path.basename(path))
        if m:
            found.append((int(m.group(1)), path))
    for epoch, path in sorted(found, reverse=True):
        record = _read_complete(path)
        if record is not None:
            return epoch, record
    return None


@dataclass
class ResumePoint:
    """Where training starts: the first epoch to train and the files to load (or None)."""
    start_epoch: int = 0
    params: Optional[str] = None
    states: Optional[str] = None
    record: Optional[dict] = None


def resolve_resume(save_dir, model, resume=False, resume_epoch=0, resume_params="",
                   resume_states=""):
    """Decide where to start: ``--resume`` (latest complete checkpoint in ``save_dir``), the
    authors' ``--resume-params/--resume-states/--resume-epoch``, or from scratch."""
    if resume:
        latest = find_latest(save_dir, model)
        if latest is None:
            raise UserError(f"--resume found no complete checkpoint imagenet-{model}-*.json in "
                            f"{save_dir!r}; start without --resume or point --save-dir at a "
                            "run's folder.")
        epoch, record = latest
        paths = checkpoint_paths(save_dir, model, epoch)
        return ResumePoint(epoch + 1, paths["params"], paths["states"], record)
    for flag, path in (("--resume-params", resume_params), ("--resume-states", resume_states)):
        if path and not os.path.isfile(path):
            raise UserError(f"{flag} {path!r} does not exist; give an existing checkpoint file.")
    return ResumePoint(resume_epoch, resume_params or None, resume_states or None)


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
