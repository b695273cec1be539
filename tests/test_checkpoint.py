"""The checkpoint record and its files (:mod:`resnest.gluon.checkpoint`): written as one group
(nothing of a failed write left, a real full disk included), listed by name, a damaged record
refused in one sentence, files checked against their record while they are read."""
import json
import os
import subprocess
import sys

import pytest

from resnest.gluon import checkpoint as ckpt
from resnest.gluon.utils.errors import UserError


def _writer(payload=b"x" * 100, fail=False):
    def write(path):
        with open(path, "wb") as f:
            f.write(payload[:50])
            if fail:
                raise IOError("disk full")
            f.write(payload[50:])
    return write


def _save(folder, epoch, step=None, payload=b"x" * 100, **fields):
    record = ckpt.CheckpointRecord(model="m", epoch=epoch, step=step, **fields)
    return ckpt.write_checkpoint(str(folder), record, _writer(payload), _writer(payload[::-1]))


def test_a_record_says_where_training_continues_and_holds_both_sha1s(tmp_path):
    import hashlib
    paths = _save(tmp_path, 2, class_names=["a", "b"], eval={"crop_size": 32})
    record = ckpt.read_record(paths["json"])
    assert (record.resume_epoch, record.resume_step) == (3, 0)
    assert record.params_sha1 == hashlib.sha1(b"x" * 100).hexdigest()
    assert record.states_sha1 == hashlib.sha1((b"x" * 100)[::-1]).hexdigest()
    assert record.class_names == ["a", "b"] and record.version == ckpt.RECORD_VERSION
    mid = ckpt.read_record(_save(tmp_path, 4, step=7)["json"])
    assert (mid.resume_epoch, mid.resume_step) == (4, 7)
    assert sorted(os.listdir(tmp_path)) == sorted(
        f"imagenet-m-{n}.{e}" for n in ("2", "4-step7") for e in ("json", "params", "states"))


def test_a_failed_write_leaves_the_earlier_checkpoints_and_nothing_else(tmp_path):
    _save(tmp_path, 0)
    before = sorted(os.listdir(tmp_path))
    record = ckpt.CheckpointRecord(model="m", epoch=1)
    with pytest.raises(IOError):
        ckpt.write_checkpoint(str(tmp_path), record, _writer(), _writer(fail=True))
    assert sorted(os.listdir(tmp_path)) == before


def test_checkpoints_are_listed_newest_resume_position_first_by_name(tmp_path):
    for epoch in range(3):
        _save(tmp_path, epoch)
    _save(tmp_path, 2, step=5)
    (tmp_path / "imagenet-other-9.json").write_text("{}")          # another model's
    order = [(epoch, step) for _, epoch, step in ckpt.list_checkpoints(str(tmp_path), "m")]
    assert order == [(2, None), (2, 5), (1, None), (0, None)]


@pytest.mark.parametrize("damage, words", [
    ("not json {", "not JSON"),
    ('["a list"]', "not a JSON object"),
    ('{"epoch": 1}', "model"),
    ('{"model": "m", "epoch": -1}', "are not counts"),
    ('{"model": "m", "epoch": 1, "params_sha1": "abc"}', "params_sha1 is not a sha1"),
    ('{"model": "m", "epoch": 1, "class_names": ["a", 3]}', "class_names"),
    ('{"model": "m", "epoch": 1, "eval": {"crop_size": "big"}}', "eval crop_size"),
])
def test_a_damaged_record_is_one_sentence_naming_it(tmp_path, damage, words):
    path = tmp_path / "imagenet-m-1.json"
    path.write_text(damage)
    with pytest.raises(UserError, match=words) as err:
        ckpt.read_record(str(path))
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_files_are_checked_against_their_record_while_read(tmp_path):
    paths = _save(tmp_path, 0)
    record = ckpt.read_record(paths["json"])
    assert ckpt.read_verified(paths["params"], record.params_sha1) == b"x" * 100
    with open(paths["params"], "ab") as f:
        f.write(b"changed")
    with pytest.raises(UserError, match="is not the one its record names"):
        ckpt.read_verified(paths["params"], record.params_sha1)
    assert ckpt.record_beside(str(tmp_path / "elsewhere.params")) is None


def test_a_version_1_record_reads_as_one(tmp_path):
    """Round 2 wrote records without version, run id or task; their fields still read."""
    old = {"model": "resnest14", "epoch": 11, "step": None, "resume_epoch": 12,
           "resume_step": 0, "class_names": ["0", "1"], "eval": {"crop_size": 32,
                                                                 "crop_ratio": 1.0},
           "run": {"batch_size": 32}, "loss_scaler": {"scale": 1.0, "clean_steps": 0},
           "params_sha1": "a" * 40, "states_sha1": "b" * 40}
    path = tmp_path / "imagenet-resnest14-11.json"
    path.write_text(json.dumps(old))
    record = ckpt.read_record(str(path))
    assert record.version == 1 and record.run_id is None and record.resume_epoch == 12
    assert record.eval == {"crop_size": 32, "crop_ratio": 1.0}


def test_a_full_disk_leaves_the_previous_checkpoint_and_no_parts(tmp_path):
    """A real file-size limit (RLIMIT_FSIZE, as a full disk: writes fail with EFBIG) while
    MXNet writes the .params: one sentence, the previous checkpoint intact, nothing else."""
    code = f"""
import resource, signal
import mxnet as mx
from resnest.gluon.checkpoint import CheckpointRecord, write_checkpoint
from resnest.gluon.train.runner import _array_writer
from resnest.gluon.utils.errors import UserError
net = mx.gluon.nn.Dense(8, in_units=8); net.initialize()
trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {{"learning_rate": 0.1}})
d = {str(tmp_path)!r}
write_checkpoint(d, CheckpointRecord("m", 0), _array_writer(net.save_parameters),
                 _array_writer(trainer.save_states))
big = mx.gluon.nn.Dense(4000, in_units=1000); big.initialize()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100000, 100000))
try:
    write_checkpoint(d, CheckpointRecord("m", 1), _array_writer(big.save_parameters),
                     _array_writer(trainer.save_states))
except UserError as err:
    print("USER:", err)
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("USER:")]
    assert len(line) == 1 and "cannot write" in line[0] and "No space left" in line[0], \
        proc.stdout + proc.stderr
    assert sorted(os.listdir(tmp_path)) == ["imagenet-m-0.json", "imagenet-m-0.params",
                                            "imagenet-m-0.states"]
    assert ckpt.read_record(str(tmp_path / "imagenet-m-0.json")).resume_epoch == 1
