"""The common training runner's own file handling (:mod:`resnest.gluon.train.runner`); whole
runs are in ``test_scripts_train*.py``."""
import os

from resnest.gluon import checkpoint as ckpt
from resnest.gluon.train.runner import _remove_step_checkpoints


def _save(folder, model, epoch, step=None):
    def write(path):
        with open(path, "wb") as f:
            f.write(b"x")
    record = ckpt.CheckpointRecord(model=model, epoch=epoch, step=step)
    return ckpt.write_checkpoint(str(folder), record, write, write)


def test_old_step_checkpoints_go_also_those_a_kill_left_without_their_json(tmp_path):
    """A kill -9 inside the removal of the previous mid-epoch checkpoint (its JSON goes first)
    leaves its .params/.states; the next removal still finds them by name, and leaves the
    epoch checkpoints and other models' files (also a model whose name extends this one)."""
    _save(tmp_path, "m", 0)
    for step in (5, 10, 15):
        _save(tmp_path, "m", 1, step)
    os.remove(tmp_path / "imagenet-m-1-step5.json")            # where the kill came
    _save(tmp_path, "other", 1, 5)
    _save(tmp_path, "m-2", 1, 5)
    keep = ckpt.checkpoint_paths(str(tmp_path), "m", 1, 15)["json"]
    _remove_step_checkpoints(str(tmp_path), "m", "classification", keep=keep)
    want = [f"imagenet-{stem}.{ext}" for stem in ("m-0", "m-1-step15", "other-1-step5",
                                                  "m-2-1-step5")
            for ext in ("json", "params", "states")]
    assert sorted(os.listdir(tmp_path)) == sorted(want)
