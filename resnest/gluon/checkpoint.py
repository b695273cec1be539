"""Checkpoints: the files of one (``.params``, ``.states``, ``.json``) and the record that says
what they are. This module is the only one that writes or reads the record: training, resume,
verify, predict, the task scripts and the converter all come here.

Names: ``{prefix}-{model}-{epoch}.params/.states/.json`` after an epoch, with prefix
``imagenet`` for classifiers (the authors' published names) and the task's name otherwise;
``...-{epoch}-step{step}.*`` inside an epoch. The three files are written as one group through
:func:`resnest.gluon.utils.io.atomic_group` (temporary names, fsync, renames, the JSON last),
and the JSON holds the sha1 of the other two: a checkpoint exists when its JSON does, and is
what it claims when both files match it. Whoever loads the files checks that, while reading
them (:func:`load_params_verified`), so no file is read twice.

The record (:class:`CheckpointRecord`) carries the run's identity (``run_id``, the same in
every checkpoint of one run), the full training configuration, what fixes the run (batch size,
LR, workers, the data's fingerprints), the class names, how the model was evaluated, the loss
scaler, and where training continues (derived from ``epoch`` and ``step``).
"""
import dataclasses
import glob
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from typing import List, Optional

from .utils.errors import UserError
from .utils.io import atomic_group

__all__ = ["RECORD_VERSION", "CheckpointRecord", "checkpoint_paths", "write_checkpoint",
           "write_weights", "read_record", "record_beside", "list_checkpoints",
           "load_params_verified", "read_verified"]

# Version 3 records carry ``record_sha1``, the sha1 of the record itself (see _digest).
RECORD_VERSION = 3
_PREFIX = {"classification": "imagenet"}
_NAME = re.compile(r"(?P<prefix>[a-z-]+)-(?P<model>.+)-(?P<epoch>\d+)(?:-step(?P<step>\d+))?"
                   r"\.json$")
_SHA1 = re.compile(r"[0-9a-f]{40}$")


@dataclass
class CheckpointRecord:
    """The JSON beside a checkpoint's ``.params`` (see the module doc).

    ``epoch`` is the 0-based epoch the weights were saved in: after it when ``step`` is None,
    after ``step`` of its steps otherwise. ``eval`` holds how the model is evaluated (for a
    classifier ``crop_size`` and ``crop_ratio``). Records of version 1 (no ``run_id``,
    ``task`` or ``config``) read as such.
    """

    model: str
    epoch: Optional[int] = None            # None: weights not from a training run (converted)
    step: Optional[int] = None
    task: str = "classification"
    run_id: Optional[str] = None
    config: dict = field(default_factory=dict)
    run: dict = field(default_factory=dict)
    class_names: Optional[List[str]] = None
    eval: dict = field(default_factory=dict)
    loss_scaler: dict = field(default_factory=dict)
    params_sha1: Optional[str] = None
    states_sha1: Optional[str] = None
    converted_from: Optional[str] = None   # the file a converted checkpoint was made from
    version: int = RECORD_VERSION

    @property
    def resume_epoch(self):
        """The epoch training continues in."""
        if self.epoch is None:
            return 0
        return self.epoch if self.step else self.epoch + 1

    @property
    def resume_step(self):
        """Steps of :attr:`resume_epoch` already done."""
        return self.step or 0

    def to_json(self):
        """The record as written: its fields, where training resumes, and ``record_sha1``."""
        data = dict(dataclasses.asdict(self), resume_epoch=self.resume_epoch,
                    resume_step=self.resume_step)
        # digested as a reader will parse it (tuples as lists, number keys as strings)
        return dict(data, record_sha1=_digest(json.loads(json.dumps(data))))

    @classmethod
    def from_json(cls, data, where):
        """The record in ``data`` (a parsed JSON), checked field by field; raises
        :class:`UserError` naming ``where`` and what is wrong."""
        if not isinstance(data, dict):
            raise UserError(f"checkpoint record {where} is damaged (not a JSON object).")
        problem = _digest_problem(data)
        if problem:
            raise UserError(f"checkpoint record {where} is damaged ({problem}); restore it, "
                            "or remove it to fall back to the previous checkpoint.")
        names = {f.name for f in dataclasses.fields(cls)}
        kept = {k: v for k, v in data.items() if k in names}
        kept.setdefault("version", 1)
        try:
            record = cls(**kept)
        except TypeError as err:                    # a required field missing
            raise UserError(f"checkpoint record {where} is damaged ({err}).") from None
        problem = record._problem()
        if problem:
            raise UserError(f"checkpoint record {where} is damaged ({problem}).")
        return record

    def _problem(self):
        """What is wrong with the fields' values, or None."""
        def count(v, low):
            return isinstance(v, int) and not isinstance(v, bool) and v >= low
        if not isinstance(self.model, str) or not self.model:
            return "no model name"
        if not (self.epoch is None or count(self.epoch, 0)) or \
                not (self.step is None or count(self.step, 1)):
            return f"epoch {self.epoch!r} / step {self.step!r} are not counts"
        for name in ("params_sha1", "states_sha1"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, str) and _SHA1.match(value)):
                return f"{name} is not a sha1"
        if self.class_names is not None and not (
                isinstance(self.class_names, list)
                and all(isinstance(n, str) and n for n in self.class_names)):
            return "class_names is not a list of names"
        for name in ("config", "run", "eval", "loss_scaler"):
            if not isinstance(getattr(self, name), dict):
                return f"{name} is not an object"
        for key, value in self.eval.items():
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                return f"eval {key} is {value!r}, not a positive number"
        return None


def _digest(data):
    """The sha1 of a record's JSON object (every key but ``record_sha1``, in one canonical
    spelling), so that a changed byte that still parses (a flipped letter of the task, a digit
    of the epoch) is caught like a changed byte of the weights."""
    body = {k: v for k, v in data.items() if k != "record_sha1"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha1(text.encode("ascii")).hexdigest()


def _digest_problem(data):
    """Why the parsed record ``data`` does not match its own sha1, or None. Records written
    before version 3 have none and are read as they are."""
    version = data.get("version", 1)
    if "record_sha1" not in data:
        if isinstance(version, int) and not isinstance(version, bool) and version < 3:
            return None
        return "its record_sha1 is missing"
    if data["record_sha1"] != _digest(data):
        return "it does not match its record_sha1: it was changed after it was written"
    return None


def checkpoint_paths(folder, model, epoch, step=None, task="classification"):
    """``{'params', 'states', 'json'}`` paths of the checkpoint after ``epoch`` (0-based), or
    after ``step`` steps of it."""
    stem = os.path.join(folder, f"{_PREFIX.get(task, task)}-{model}-{epoch}" +
                        (f"-step{step}" if step is not None else ""))
    return {"params": stem + ".params", "states": stem + ".states", "json": stem + ".json"}


def _sha1(path):
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def write_checkpoint(folder, record, write_params, write_states=None):
    """Write one checkpoint as a group: ``write_params(tmp_path)`` and ``write_states(tmp_path)``
    fill the temporary files, then the record (with both sha1s) is written and everything is
    renamed, the JSON last. Returns the paths.

    Raises
    ------
    UserError
        The folder cannot be written (full disk, no permission); earlier checkpoints are
        unchanged and no part of this one is left behind.
    """
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create the checkpoint folder {folder}: {err.strerror}.") \
            from None
    paths = checkpoint_paths(folder, record.model, record.epoch, record.step, record.task)
    order = [paths["params"]] + ([paths["states"]] if write_states else []) + [paths["json"]]
    with atomic_group(order) as tmp:
        params = tmp[os.path.abspath(paths["params"])]
        write_params(params)
        record.params_sha1 = _sha1(params)
        if write_states:
            states = tmp[os.path.abspath(paths["states"])]
            write_states(states)
            record.states_sha1 = _sha1(states)
        with open(tmp[os.path.abspath(paths["json"])], "w", encoding="utf-8") as f:
            json.dump(record.to_json(), f, indent=1, sort_keys=True)
    return paths


def write_weights(params_path, record, write_params):
    """Write weights that are not a training checkpoint (a converted file) at ``params_path``
    with ``record`` beside it (``.json``, with the weights' sha1), as one group: the weights
    first, the record last. Returns the JSON path."""
    json_path = os.path.splitext(params_path)[0] + ".json"
    with atomic_group([params_path, json_path]) as tmp:
        params = tmp[os.path.abspath(params_path)]
        write_params(params)
        record.params_sha1 = _sha1(params)
        with open(tmp[os.path.abspath(json_path)], "w", encoding="utf-8") as f:
            json.dump(record.to_json(), f, indent=1, sort_keys=True)
    return json_path


def read_record(json_path):
    """The :class:`CheckpointRecord` in ``json_path``; :class:`UserError` if it cannot be read
    or is not a record."""
    try:
        with open(json_path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as err:
        raise UserError(f"cannot read checkpoint record {json_path}: {err.strerror}.") from None
    except ValueError as err:
        raise UserError(f"checkpoint record {json_path} is damaged (not JSON: {err}).") \
            from None
    return CheckpointRecord.from_json(data, json_path)


def record_beside(params_path):
    """The record of the checkpoint whose weights are ``params_path`` (its ``.json``), or None
    when there is none (a file from elsewhere); a record that is there but damaged is refused.
    Whoever loads the weights checks them against ``record.params_sha1`` while reading them."""
    json_path = os.path.splitext(params_path)[0] + ".json"
    if not os.path.isfile(json_path):
        return None
    return read_record(json_path)


def list_checkpoints(folder, model, task="classification"):
    """``[(json path, epoch, step or None)]`` of ``model``'s checkpoints in ``folder``, by name
    only (nothing read), newest resume position first."""
    prefix = _PREFIX.get(task, task)
    found = []
    pattern = os.path.join(glob.escape(folder), f"{prefix}-{glob.escape(model)}-*.json")
    for path in glob.glob(pattern):
        m = _NAME.match(os.path.basename(path))
        if m and m.group("model") == model and m.group("prefix") == prefix:
            step = int(m.group("step")) if m.group("step") else None
            found.append((path, int(m.group("epoch")), step))

    def position(item):
        _, epoch, step = item
        return (epoch, step) if step else (epoch + 1, 0)
    return sorted(found, key=position, reverse=True)


def read_verified(path, sha1, what="checkpoint file"):
    """The bytes of ``path``, refused in one sentence unless their sha1 is ``sha1`` (None:
    not checked)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise UserError(f"cannot read {what} {path}: {err.strerror}.") from None
    if sha1 is not None and hashlib.sha1(data).hexdigest() != sha1:
        raise UserError(f"{what} {path} is not the one its record names (sha1 differs): it was "
                        "changed or damaged after it was written; restore it, or remove its "
                        ".json to fall back to the previous checkpoint.")
    return data


def load_params_verified(path, sha1):
    """``{name: NDArray}`` of a ``.params`` file, read once and checked against ``sha1``."""
    import mxnet as mx
    data = read_verified(path, sha1)
    try:
        return mx.nd.load_frombuffer(data)
    except mx.base.MXNetError:
        raise UserError(f"{path} is not a readable MXNet .params file (truncated or "
                        "corrupt).") from None
