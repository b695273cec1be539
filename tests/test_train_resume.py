"""Where a run starts (:mod:`resnest.gluon.train.resume`): the newest checkpoint, refused when
its record is damaged or when a setting that defines the run changed (unless overridden, and
then the new values apply), a mid-epoch checkpoint only with the same layout, and optimizer
states that do not fit the weights refused before the first step."""
import dataclasses

import mxnet as mx
import pytest

from _train import tiny_net
from resnest.gluon import checkpoint as ckpt
from resnest.gluon.train.config import parse_config
from resnest.gluon.train.resume import (ResumePoint, apply_overrides, load_checkpoint,
                                        resolve_resume)
from resnest.gluon.utils.errors import UserError

RUN = {"batch_size": 8, "lr": 0.1, "workers": 2, "train_data": "t"}


def _cfg(save_dir, *extra):
    return parse_config(["--rec-train", "t.rec", "--rec-val", "v.rec", "--model", "m",
                         "--save-dir", str(save_dir), "--resume", *extra])


def _save(folder, epoch, step=None, cfg=None, run=RUN):
    cfg = cfg or _cfg(folder)
    record = ckpt.CheckpointRecord(model="m", epoch=epoch, step=step, run=dict(run),
                                   config=dataclasses.asdict(cfg), run_id="r1")

    def write(path):
        with open(path, "wb") as f:
            f.write(b"weights")
    return ckpt.write_checkpoint(str(folder), record, write, write)


def test_the_newest_checkpoint_is_chosen_and_a_damaged_one_is_refused(tmp_path):
    for epoch in range(3):
        _save(tmp_path, epoch)
    _save(tmp_path, 2, step=5)
    point = resolve_resume(_cfg(tmp_path), RUN)
    assert (point.start_epoch, point.start_step) == (3, 0)
    assert point.params.endswith("imagenet-m-2.params") and point.record.run_id == "r1"
    (tmp_path / "imagenet-m-2.json").write_text('{"model": "m", "epoch": "two"}')
    with pytest.raises(UserError, match="imagenet-m-2.json is damaged"):
        resolve_resume(_cfg(tmp_path), RUN)         # never a silent fall-back to epoch 1


def test_resume_without_checkpoint_is_one_sentence(tmp_path):
    with pytest.raises(UserError, match="found no checkpoint of m"):
        resolve_resume(_cfg(tmp_path), RUN)
    cfg = parse_config(["--rec-train", "t.rec", "--rec-val", "v.rec", "--resume-params",
                        str(tmp_path / "x.params")])
    with pytest.raises(UserError, match="does not exist"):
        resolve_resume(cfg, RUN)


@pytest.mark.parametrize("extra, change", [
    (["--wd", "5e-4"], "--wd 0.0001 -> 0.0005"),
    (["--momentum", "0.5"], "--momentum 0.9 -> 0.5"),
    (["--label-smoothing"], "--label-smoothing False -> True"),
    (["--input-size", "64"], "--input-size 224 -> 64"),
])
def test_a_changed_setting_is_refused_unless_overridden(tmp_path, extra, change):
    _save(tmp_path, 0)
    with pytest.raises(UserError) as err:
        resolve_resume(_cfg(tmp_path, *extra), RUN)
    assert change in str(err.value) and "--resume-override" in str(err.value)
    point = resolve_resume(_cfg(tmp_path, *extra, "--resume-override"), RUN)
    assert point.start_epoch == 1
    # Where and how a run executes may change freely.
    assert resolve_resume(_cfg(tmp_path, "--data-nthreads", "9", "--timeout", "5"),
                          RUN).start_epoch == 1


def test_a_changed_run_identity_is_refused_and_the_optimizer_never_changes(tmp_path):
    _save(tmp_path, 0)
    changed = dict(RUN, batch_size=16, workers=1, train_data="other")
    with pytest.raises(UserError) as err:
        resolve_resume(_cfg(tmp_path), changed)
    msg = str(err.value)
    assert "batch size 8 -> 16" in msg and "workers 2 -> 1" in msg and \
        "training data 't' -> 'other'" in msg and "\n" not in msg
    with pytest.raises(UserError, match="optimizer 'nag' -> 'sgd'"):
        resolve_resume(_cfg(tmp_path, "--optimizer", "sgd", "--resume-override"), RUN)


def test_a_mid_epoch_checkpoint_needs_the_same_layout(tmp_path):
    _save(tmp_path, 4, step=3)
    two_to_one = dict(RUN, workers=1)
    with pytest.raises(UserError, match="only checkpoints in .* are inside epoch 4"):
        resolve_resume(_cfg(tmp_path, "--resume-override"), two_to_one)
    _save(tmp_path, 3)
    point = resolve_resume(_cfg(tmp_path, "--resume-override"), two_to_one)
    assert (point.start_epoch, point.start_step) == (4, 0)     # the end of epoch 3
    point = resolve_resume(_cfg(tmp_path), RUN)
    assert (point.start_epoch, point.start_step) == (4, 3)     # same layout: mid-epoch


def test_loaded_states_take_this_runs_settings_and_other_states_are_refused(tmp_path):
    """MXNet's Trainer.load_states brings the saved optimizer (its wd, momentum) back;
    after apply_overrides this run's values hold. States of another model: one sentence."""
    net, trainer = tiny_net()
    x = mx.nd.zeros((2, 3, 32, 32))
    with mx.autograd.record():
        loss = net(x).sum()
    loss.backward()
    trainer.step(2)
    trainer.save_states(str(tmp_path / "a.states"))
    net.save_parameters(str(tmp_path / "a.params"))
    fresh, other = tiny_net()
    other._optimizer.wd = 0.5
    load_checkpoint(fresh, other, ResumePoint(0, 0, str(tmp_path / "a.params"),
                                              str(tmp_path / "a.states")), mx.cpu())
    assert other._optimizer.wd == 1e-4                           # the saved optimizer's
    cfg = parse_config(["--rec-train", "t", "--rec-val", "v", "--wd", "3e-4",
                        "--momentum", "0.8"])
    apply_overrides(other, cfg)
    assert (other._optimizer.wd, other._optimizer.momentum) == (3e-4, 0.8)
    wide, wide_trainer = tiny_net(classes=7)
    with pytest.raises(UserError, match="optimizer state of another model or run"):
        load_checkpoint(wide, wide_trainer, ResumePoint(0, 0, None,
                                                        str(tmp_path / "a.states")), mx.cpu())
    with pytest.raises(UserError, match="does not fit the model"):
        load_checkpoint(wide, wide_trainer, ResumePoint(0, 0, str(tmp_path / "a.params")),
                        mx.cpu())
