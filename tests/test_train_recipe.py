"""Unit tests of the training library, one function at a time, on CPU in-process."""
import json
import math
import os
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

from resnest.gluon.evaluate import evaluate
from resnest.gluon.train import checkpoint as ckpt
from resnest.gluon.train.config import parse_config
from resnest.gluon.train.engine import (LossScaler, Recipe, TrainingDiverged, train_epoch,
                                        train_step)
from resnest.gluon.utils.distributed import Dist, launched_by_horovod
from resnest.gluon.utils.errors import UserError
from resnest.gluon.utils.io import atomic_write
from resnest.gluon.train.losses import (draw_mixup_lam, make_targets, mixup_batch,
                                        smooth_one_hot, soft_cross_entropy)
from resnest.gluon.train.monitor import Monitor, read_metrics
from resnest.gluon.train.runner import build_net, build_trainer
from resnest.gluon.train.schedule import dropblock_prob, global_lr, learning_rate

AUTHORS = ("--rec-train /r/train.rec --rec-val /r/val.rec --model resnest50 --lr 0.05 "
           "--num-epochs 270 --batch-size 128 --use-rec --dtype float32 --warmup-epochs 5 "
           "--last-gamma --no-wd --label-smoothing --mixup --save-dir params_resnest50 "
           "--log-interval 50 --eval-frequency 5 --auto_aug --input-size 224").split()


# ---------------------------------------------------------------- config

def test_authors_command_parses_unchanged():
    cfg = parse_config(AUTHORS)
    assert (cfg.model, cfg.lr, cfg.num_epochs, cfg.batch_size) == ("resnest50", 0.05, 270, 128)
    assert cfg.warmup_epochs == 5 and cfg.eval_frequency == 5 and cfg.log_interval == 50
    assert cfg.last_gamma and cfg.no_wd and cfg.label_smoothing and cfg.mixup and cfg.auto_aug
    assert cfg.save_dir == "params_resnest50" and cfg.optimizer == "nag"
    assert cfg.smoothing_eps == 0.1 and cfg.mixup_alpha == 0.2 and cfg.classes is None
    # The authors' models build DropBlock 0.1 in; their command trains with it.
    assert cfg.dropblock_prob == 0.1 and cfg.dropblock_mode == "batch"


def test_remaining_published_flags_parse():
    cfg = parse_config(AUTHORS + "--mixup-alpha 0.3 --mixup-off-epoch 10 --save-frequency 2 "
                                 "--crop-ratio 0.9 --dropblock-prob 0.1 --resume-epoch 3 "
                                 "--data-nthreads 8 --no-cuda --optimizer sgd --seed 7 "
                                 "--classes 10".split())
    assert (cfg.mixup_alpha, cfg.mixup_off_epoch, cfg.save_frequency) == (0.3, 10, 2)
    assert (cfg.crop_ratio, cfg.dropblock_prob, cfg.resume_epoch) == (0.9, 0.1, 3)
    assert (cfg.data_nthreads, cfg.no_cuda, cfg.optimizer, cfg.seed, cfg.classes) == \
        (8, True, "sgd", 7, 10)


@pytest.mark.parametrize("extra, word", [
    ("--batch-size 0", "--batch-size must be positive"),
    ("--lr 0", "--lr must be positive"), ("--lr -0.1", "--lr must be positive"),
    ("--input-size 0", "--input-size 0 is too small"),
    ("--input-size 16", "--input-size 16 is too small"),
    ("--crop-ratio 0", r"--crop-ratio must be in \(0, 1\]"),
    ("--crop-ratio 1.5", r"--crop-ratio must be in \(0, 1\]"),
    ("--momentum 1.5", "--momentum"), ("--wd -1", "--wd must be 0 or more"),
    ("--dropblock-prob 1.5", "--dropblock-prob"), ("--warmup-epochs 300", "--warmup-epochs"),
    ("--classifier-lr-mult 0", "--classifier-lr-mult"),
    ("--save-interval-steps -1", "--save-interval-steps"),
    ("--resume --resume-params x", "--resume"),
    ("--pretrained --pretrained-params x.params", "--pretrained"),
    ("--train-dir somewhere", "give the train data once"),
])
def test_bad_values_are_one_sentence(extra, word):
    with pytest.raises(UserError, match=word):
        parse_config(AUTHORS + extra.split())


def test_a_save_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(UserError, match="is a file, not a folder"):
        parse_config(AUTHORS + ["--save-dir", str(tmp_path / "f")])


def test_sizes_that_cannot_fit_and_class_counts_below_one_are_refused():
    from resnest.gluon import get_model
    from resnest.gluon.utils.memory import check_fits_in_memory
    with pytest.raises(UserError, match="--input-size 30000 with batch size 8 needs at least"):
        check_fits_in_memory(8, 30000, mx.cpu(), training=True)
    check_fits_in_memory(8, 224, mx.cpu(), training=True)         # a real size passes
    for bad in (0, -3, 2.5, True):
        with pytest.raises(UserError, match="classes must be a positive integer"):
            get_model("resnest_tiny", classes=bad)
    assert get_model("resnest_tiny", classes=np.int64(3)).fc._units == 3


# ---------------------------------------------------------------- schedule

def test_lr_warmup_then_cosine_to_zero():
    base, total, warm = 0.4, 1000, 100
    assert learning_rate(0, total, warm, base) == 0.0
    assert learning_rate(50, total, warm, base) == pytest.approx(0.2)
    assert learning_rate(100, total, warm, base) == pytest.approx(base)
    assert learning_rate(550, total, warm, base) == pytest.approx(base / 2)
    assert learning_rate(total, total, warm, base) == pytest.approx(0.0, abs=1e-12)
    after = [learning_rate(s, total, warm, base) for s in range(100, total)]
    assert all(a >= b for a, b in zip(after, after[1:]))
    assert global_lr(0.05, 64) == pytest.approx(3.2)


def test_lr_without_warmup_starts_at_base():
    assert learning_rate(0, 10, 0, 0.1) == pytest.approx(0.1)


def test_dropblock_ramp_is_linear_to_target():
    # The authors' scheduler: 0.1 * (epoch + 1) / num_epochs (also checked against their
    # code in test_layers.py).
    probs = [dropblock_prob(e, 10, 0.1) for e in range(10)]
    assert probs[0] == pytest.approx(0.01) and probs[-1] == pytest.approx(0.1)
    assert np.allclose(np.diff(probs), 0.01)
    assert dropblock_prob(0, 1, 0.1) == pytest.approx(0.1)


# ---------------------------------------------------------------- losses

def test_label_smoothing_values():
    t = smooth_one_hot(mx.nd.array([2, 0]), 4, 0.1).asnumpy()
    assert t[0, 2] == pytest.approx(0.925) and t[0, 0] == pytest.approx(0.025)
    assert np.allclose(t.sum(1), 1.0)


def test_mixup_pairs_batch_with_its_reverse_and_smooths_inside():
    x = mx.nd.arange(4 * 3).reshape((4, 3))
    y = mx.nd.array([0, 1, 2, 3])
    lam, eps = 0.7, 0.1
    mx_x, t = make_targets(x, y, 4, eps, lam)
    assert np.allclose(mx_x.asnumpy()[0], 0.7 * x.asnumpy()[0] + 0.3 * x.asnumpy()[3])
    s = smooth_one_hot(y, 4, eps).asnumpy()
    assert np.allclose(t.asnumpy()[0], 0.7 * s[0] + 0.3 * s[3])
    assert np.allclose(t.asnumpy().sum(1), 1.0)
    assert np.allclose(mixup_batch(x, 1.0).asnumpy(), x.asnumpy())


def test_soft_cross_entropy_matches_gluon_on_one_hot():
    logits = mx.nd.random.normal(shape=(5, 7))
    y = mx.nd.array([0, 3, 6, 2, 2])
    ours = soft_cross_entropy(logits, mx.nd.one_hot(y, 7)).asnumpy()
    ref = mx.gluon.loss.SoftmaxCrossEntropyLoss()(logits, y).asnumpy()
    assert np.allclose(ours, ref, atol=1e-5)


def test_mixup_lambda_follows_beta_alpha_alpha():
    from scipy import stats
    rng = np.random.RandomState(3)
    lams = [draw_mixup_lam(rng, 0.2) for _ in range(3000)]
    # Kolmogorov-Smirnov against scipy's Beta(0.2, 0.2); Beta(1, 1) (uniform) is rejected.
    assert stats.kstest(lams, "beta", args=(0.2, 0.2)).pvalue > 0.01
    assert stats.kstest(lams, "beta", args=(1.0, 1.0)).pvalue < 1e-6


# ---------------------------------------------------------------- checkpoint

class _Stub:
    """Writes a fixed payload like save_parameters / save_states."""

    def __init__(self, payload=b"x" * 100, fail=False):
        self.payload, self.fail = payload, fail

    def save_parameters(self, path):
        with open(path, "wb") as f:
            f.write(self.payload[:50])
            if self.fail:
                raise IOError("disk full")
            f.write(self.payload[50:])

    save_states = save_parameters


def test_atomic_write_keeps_previous_file_on_failure(tmp_path):
    path = tmp_path / "a.params"
    atomic_write(str(path), _Stub(b"1" * 100).save_parameters)
    with pytest.raises(IOError):
        atomic_write(str(path), _Stub(b"2" * 100, fail=True).save_parameters)
    assert path.read_bytes() == b"1" * 100
    assert sorted(os.listdir(tmp_path)) == ["a.params"]  # no temp file left


def _record(epoch, step=None, **run):
    return {"resume_epoch": epoch if step else epoch + 1, "resume_step": step or 0,
            "run": dict({"batch_size": 8, "lr": 0.1, "workers": 2, "train_data": "t"}, **run)}


def _cfg(save_dir, **kw):
    return parse_config(["--rec-train", "t.rec", "--rec-val", "v.rec", "--model", "m",
                         "--save-dir", str(save_dir), "--resume"] +
                        [f"--{k.replace('_', '-')}" if v is True else f"--{k.replace('_', '-')}={v}"
                         for k, v in kw.items()])


RUN = {"batch_size": 8, "lr": 0.1, "workers": 2, "train_data": "t"}


def test_latest_complete_checkpoint_skips_damaged_ones(tmp_path):
    d = str(tmp_path)
    for epoch in range(3):
        ckpt.save_checkpoint(d, "m", _Stub(), _Stub(), _record(epoch), epoch)
    ckpt.save_checkpoint(d, "m", _Stub(), _Stub(), _record(2, step=5), 2, step=5)
    order = [(r["resume_epoch"], r["resume_step"]) for _, r in ckpt.find_checkpoints(d, "m")]
    assert order == [(3, 0), (2, 5), (2, 0), (1, 0)]
    with open(ckpt.checkpoint_paths(d, "m", 2)["params"], "ab") as f:
        f.write(b"torn")
    os.remove(ckpt.checkpoint_paths(d, "m", 1)["json"])
    point = ckpt.resolve_resume(_cfg(tmp_path), RUN)
    assert (point.start_epoch, point.start_step) == (2, 5)
    assert point.params.endswith("imagenet-m-2-step5.params")


def test_resume_without_checkpoint_is_one_sentence(tmp_path):
    with pytest.raises(UserError, match="no complete checkpoint"):
        ckpt.resolve_resume(_cfg(tmp_path), RUN)
    cfg = parse_config(["--rec-train", "t.rec", "--rec-val", "v.rec", "--resume-params",
                        str(tmp_path / "x.params")])
    with pytest.raises(UserError, match="does not exist"):
        ckpt.resolve_resume(cfg, RUN)


def test_resume_refuses_a_changed_run_unless_overridden(tmp_path):
    ckpt.save_checkpoint(str(tmp_path), "m", _Stub(), _Stub(), _record(0), 0)
    changed = dict(RUN, batch_size=16, workers=1, train_data="other")
    with pytest.raises(UserError) as err:
        ckpt.resolve_resume(_cfg(tmp_path), changed)
    msg = str(err.value)
    assert "batch size 8 -> 16" in msg and "workers 2 -> 1" in msg and "training data t -> " \
        "other" in msg and "--resume-override" in msg and "\n" not in msg
    point = ckpt.resolve_resume(_cfg(tmp_path, resume_override=True), changed)
    assert point.start_epoch == 1
    assert ckpt.resolve_resume(_cfg(tmp_path), dict(RUN)).start_epoch == 1


def test_a_mid_epoch_checkpoint_needs_the_same_layout(tmp_path):
    d = str(tmp_path)
    ckpt.save_checkpoint(d, "m", _Stub(), _Stub(), _record(4, step=3), 4, step=3)
    two_to_one = dict(RUN, workers=1)
    with pytest.raises(UserError, match="only checkpoints in .* are inside epoch 4"):
        ckpt.resolve_resume(_cfg(tmp_path, resume_override=True), two_to_one)
    ckpt.save_checkpoint(d, "m", _Stub(), _Stub(), _record(3), 3)
    point = ckpt.resolve_resume(_cfg(tmp_path, resume_override=True), two_to_one)
    assert (point.start_epoch, point.start_step) == (4, 0)     # the end of epoch 3
    point = ckpt.resolve_resume(_cfg(tmp_path), RUN)
    assert (point.start_epoch, point.start_step) == (4, 3)     # same layout: mid-epoch


def test_removing_old_step_checkpoints_also_finds_those_a_kill_left_without_json(tmp_path):
    """A kill -9 inside the removal of the previous mid-epoch checkpoint (its JSON goes first)
    leaves its .params/.states; the next save's removal still finds them by name."""
    d = str(tmp_path)
    ckpt.save_checkpoint(d, "m", _Stub(), _Stub(), _record(0), 0)
    ckpt.save_checkpoint(d, "m", _Stub(), _Stub(), _record(1, step=5), 1, step=5)
    os.remove(ckpt.checkpoint_paths(d, "m", 1, 5)["json"])     # where the kill came
    ckpt.save_checkpoint(d, "m", _Stub(), _Stub(), _record(1, step=10), 1, step=10)
    ckpt.save_checkpoint(d, "other", _Stub(), _Stub(), _record(1, step=5), 1, step=5)
    ckpt.remove_step_checkpoints(d, "m", keep=ckpt.checkpoint_paths(d, "m", 1, 10)["json"])
    assert sorted(os.listdir(d)) == sorted(
        [f"imagenet-m-0.{ext}" for ext in ("json", "params", "states")]
        + [f"imagenet-m-1-step10.{ext}" for ext in ("json", "params", "states")]
        + [f"imagenet-other-1-step5.{ext}" for ext in ("json", "params", "states")])


def test_a_full_disk_leaves_the_previous_checkpoint_and_no_parts(tmp_path):
    """A real file-size limit (RLIMIT_FSIZE, as a full disk: writes fail with EFBIG) while
    MXNet writes the .params: one sentence, the previous checkpoint intact, nothing else."""
    code = f"""
import os, resource, signal, sys
import mxnet as mx
from resnest.gluon.train import checkpoint as ckpt
from resnest.gluon.utils.errors import UserError
net = mx.gluon.nn.Dense(8, in_units=8); net.initialize()
trainer = mx.gluon.Trainer(net.collect_params(), "sgd", {{"learning_rate": 0.1}})
d = {str(tmp_path)!r}
ckpt.save_checkpoint(d, "m", net, trainer, {{"resume_epoch": 1, "resume_step": 0}}, 0)
big = mx.gluon.nn.Dense(4000, in_units=1000); big.initialize()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100000, 100000))
try:
    ckpt.save_checkpoint(d, "m", big, trainer, {{"resume_epoch": 2, "resume_step": 0}}, 1)
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
    assert ckpt.find_checkpoints(str(tmp_path), "m")[0][1]["resume_epoch"] == 1


# ---------------------------------------------------------------- engine

ONE = Dist(rank=0, size=1, local_rank=0, ctx=mx.cpu(), is_root=True)


class _PeerDist(Dist):
    """Rank 0 of a pretend 2-rank job whose peer adds ``peer`` to every sum."""

    def __init__(self, peer):
        super().__init__(0, 2, 0, mx.cpu(), True)
        self.peer = np.asarray(peer, dtype=np.float64)

    def allreduce_start(self, values, name):
        return super().allreduce_start(values, name) + mx.nd.array(self.peer, dtype="float64")


def _tiny(classes=4, lr=0.1):
    mx.random.seed(1)
    net = build_net("resnest_tiny", classes, mx.cpu(), hybridize=True)
    return net, build_trainer(net, ONE, "nag", lr, 0.9, 1e-4, no_wd=True)


def _weights(net):
    """Trainable parameters (BN running statistics move in any training forward)."""
    return {k: v.data().asnumpy().copy() for k, v in net.collect_params().items()
            if v.grad_req != "null"}


def _batch(n=8, classes=4):
    rng = np.random.RandomState(0)
    return mx.nd.array(rng.randn(n, 3, 32, 32)), mx.nd.array(rng.randint(0, classes, n))


def test_no_wd_exempts_bias_and_bn():
    net, trainer = _tiny()
    mults = {k: v.wd_mult for k, v in net.collect_params().items()}
    assert all(m == 0 for k, m in mults.items() if k.endswith(("gamma", "beta", "bias")))
    assert all(m == 1 for k, m in mults.items() if k.endswith("weight"))


def test_train_step_learns_a_fixed_batch():
    net, trainer = _tiny()
    x, y = _batch()
    losses = [train_step(net, trainer, ONE, x, y, 4, 0.1).loss_sum for _ in range(15)]
    assert losses[-1] < 0.5 * losses[0]


def _states(trainer):
    from resnest.gluon.train.scaling import optimizer_state_arrays
    return [s.asnumpy().copy() for s in optimizer_state_arrays(trainer)]


def test_an_overflowing_fp16_step_changes_nothing_and_halves_the_scale():
    """The loss-scaled step decides on the device: it returns before its outcome is read, and
    an overflow leaves weights and optimizer state bit-identical."""
    from resnest.gluon.train.engine import PendingStep
    net, trainer = _tiny()
    x, y = _batch()
    scaler = LossScaler(dynamic=True, init_scale=1024)
    train_step(net, trainer, ONE, x, y, 4, 0.0, None, scaler)          # a clean step first
    before, states = _weights(net), _states(trainer)
    assert states and any(np.abs(s).sum() > 0 for s in states)         # momentum exists
    huge = LossScaler(dynamic=True, init_scale=1e38, max_scale=1e38)    # x 1e38 overflows
    pending = train_step(net, trainer, ONE, x, y, 4, 0.0, None, huge, wait=False)
    assert isinstance(pending, PendingStep)
    res = pending.result()
    assert res.skipped and res.overflow and math.isfinite(res.loss_sum)
    assert huge.scale == pytest.approx(5e37)                         # float32 on the device
    assert all(np.array_equal(before[k], v) for k, v in _weights(net).items())
    assert all(np.array_equal(a, b) for a, b in zip(states, _states(trainer)))


def test_peer_overflow_skips_this_rank_too():
    net, trainer = _tiny()
    x, y = _batch()
    before = _weights(net)
    # peer vector: [loss_sum, samples, overflow, bad_loss_rank0, bad_loss_rank1]
    res = train_step(net, trainer, _PeerDist([1.0, 8, 1, 0, 0]), x, y, 4)
    assert res.skipped and res.samples == 16
    assert all(np.array_equal(before[k], v) for k, v in _weights(net).items())


def test_nan_loss_on_a_peer_stops_with_epoch_step_rank():
    net, trainer = _tiny()
    x, y = _batch(16)
    loader = _ListLoader([(x, y, 16)] * 3)
    recipe = Recipe(classes=4, num_epochs=2, base_lr=0.1)
    with pytest.raises(TrainingDiverged, match=r"epoch 1 step 0 on rank\(s\) 1"):
        train_epoch(net, trainer, _PeerDist([0, 16, 0, 0, 1]), loader, recipe, epoch=1)


def test_a_nan_pixel_is_caught_although_the_loss_stays_finite():
    """oneDNN's ReLU maps NaN to 0: one NaN pixel leaves the loss finite but makes the stem's
    gradients NaN. The gradient check catches it: a waited step is skipped (weights intact),
    the epoch loop stops with the epoch and step."""
    net, trainer = _tiny()
    x, y = _batch()
    x[1, 0, 5, 5] = float("nan")                                 # one bad pixel in the batch
    before = _weights(net)
    res = train_step(net, trainer, ONE, x, y, 4)
    assert math.isfinite(res.loss_sum) and not res.bad_loss_ranks
    assert res.overflow and res.skipped
    assert all(np.array_equal(before[k], v) for k, v in _weights(net).items())
    loader = _ListLoader([(_batch()[0], y, 8), (x, y, 8)])
    with pytest.raises(TrainingDiverged, match="gradients are not finite at epoch 0 step 1"):
        train_epoch(net, trainer, ONE, loader, Recipe(classes=4, num_epochs=1, base_lr=0.1), 0)


def test_loss_scale_grows_after_a_window_up_to_its_maximum_and_survives_a_checkpoint():
    net, trainer = _tiny()
    x, y = _batch()
    s = LossScaler(dynamic=True, init_scale=8, window=3, max_scale=16)
    for step in range(7):
        train_step(net, trainer, ONE, x, y, 4, 0.0, None, s)
        if step == 2:
            assert s.scale == 16                                    # 3 clean steps: doubled
    assert s.scale == 16 and s.state_dict() == {"scale": 16.0, "clean_steps": 1}
    again = LossScaler(dynamic=True, init_scale=8, window=3, max_scale=16)
    again.load_state_dict(s.state_dict())
    assert again.state_dict() == s.state_dict()
    assert LossScaler().scale == 1.0


class _ListLoader:
    def __init__(self, batches):
        self.batches, self.epochs = batches, []

    def set_epoch(self, epoch, start_batch=0):
        self.epochs.append(epoch)

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


class _FixedNet:
    """Returns stored logits whatever the input."""

    def __init__(self, logits):
        self.logits = logits

    def __call__(self, x):
        return self.logits[:x.shape[0]]


def test_evaluate_counts_only_valid_samples_top1_top5():
    classes = 6
    logits = mx.nd.array(np.tile(np.arange(classes, dtype=np.float32), (4, 1)))  # ranks 5,4,..
    labels = mx.nd.array([5, 1, 3, 0])  # top1 hit, top5 hit, top5 hit, miss
    data = mx.nd.zeros((4, 3, 8, 8))
    loader = _ListLoader([(data, labels, 4), (data, labels, 2), (data, labels, 0)])
    out = evaluate(_FixedNet(logits), loader, ONE).metrics()
    assert out["val_samples"] == 6
    assert out["top1"] == pytest.approx(100 * 2 / 6)      # label 5 twice
    assert out["top5"] == pytest.approx(100 * 5 / 6)      # all but label 0 (4 + 1,5 of 2nd)
    # Cross-entropy by hand: logits 0..5, log-sum-exp = log(sum e^k); label 5 costs lse - 5.
    lse = math.log(sum(math.exp(k) for k in range(classes)))
    want = (2 * (lse - 5) + 2 * (lse - 1) + (lse - 3) + (lse - 0)) / 6
    assert out["val_loss"] == pytest.approx(want)
    # A peer's counts [top-1, top-5, images, loss, speeds] are added, not averaged.
    peer = evaluate(_FixedNet(logits), loader, _PeerDist([1, 1, 4, 0, 0, 0])).metrics()
    assert peer["val_samples"] == 10 and peer["top1"] == pytest.approx(100 * 3 / 10)


def test_train_epoch_logs_global_numbers():
    net, trainer = _tiny()
    x, y = _batch(8)
    seen = []

    class Hooks:
        beats = 0

        def beat(self):
            Hooks.beats += 1

        def step(self, **kw):
            seen.append(kw)
    recipe = Recipe(classes=4, num_epochs=2, base_lr=0.1, warmup_epochs=1, log_interval=2,
                    mixup_alpha=0.2, smoothing_eps=0.1)
    stats = train_epoch(net, trainer, ONE, _ListLoader([(x, y, 8)] * 5), recipe, 0,
                        hooks=Hooks())
    assert Hooks.beats == 5 and [s["step"] for s in seen] == [1, 3, 4]
    assert stats["samples"] == 40 and stats["skipped_steps"] == 0
    assert stats["lr"] == pytest.approx(0.1 * 4 / 5)   # warm-up step 4 of 5
    assert recipe.mixup_on(0) and not Recipe(4, 10, 0.1, mixup_alpha=0.2,
                                              mixup_off_epoch=2).mixup_on(8)


# ---------------------------------------------------------------- distributed / monitor

def test_horovod_detection():
    assert launched_by_horovod({"HOROVOD_RANK": "1"}) and not launched_by_horovod({})


def test_watchdog_exits_nonzero_when_no_progress():
    code = ("from resnest.gluon.utils.distributed import Watchdog; import time; "
            "w = Watchdog(1.0, rank=3).start(); "
            "[ (w.beat(), time.sleep(0.2)) for _ in range(10) ]; time.sleep(30)")
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    elapsed = time.monotonic() - start
    assert proc.returncode == 3 and "rank 3 made no progress" in proc.stderr
    assert 3.0 <= elapsed < 15  # alive while beating (2 s), dead ~1 s after


def test_monitor_writes_metrics_and_png(tmp_path):
    mon = Monitor(str(tmp_path), enabled=True, progress=False)
    mon.save_config({"model": "m"})
    for epoch in range(2):
        for step in range(2):
            mon.step(epoch, step, 2, 1.0 / (epoch + step + 1), 0.1, 100.0, 1.0)
        mon.epoch_end(epoch, {"train_loss": 0.5, "img_per_sec": 100.0, "epoch_time": 1.0,
                              "lr": 0.1, "top1": 50.0 + epoch, "top5": 90.0,
                              "val_samples": 10})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"kind": "st')  # a torn line from a killed writer
    mon.finish()
    records = read_metrics(str(tmp_path / "metrics.jsonl"))
    assert [r["kind"] for r in records].count("step") == 4
    assert records[-1]["top1"] == 51.0 and records[-1]["val_samples"] == 10
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "config.json").read_text()) == {"model": "m"}
    assert "epoch 1 done" in (tmp_path / "train.log").read_text()
    off = Monitor(str(tmp_path / "other"), enabled=False)
    off.step(0, 0, 1, 1.0, 0.1, 1.0, 1.0)
    assert not os.path.exists(tmp_path / "other")


def test_finite_check_handles_hundreds_of_gradients():
    from resnest.gluon.train.engine import _grads_finite

    class P:
        grad_req = "write"

        def __init__(self, value):
            self._g = mx.nd.full((3,), value)

        def grad(self):
            return self._g
    # Element by element: huge finite gradients whose sum overflows float32 are not an
    # overflow; one Inf among 450 arrays is.
    params = [P(3e38) for _ in range(450)]
    assert not np.isfinite(np.float32(3e38) * np.float32(3)) and _grads_finite(params).asscalar() == 1
    params[401] = P(float("inf"))
    assert _grads_finite(params).asscalar() == 0


def test_fp32_stops_and_fp16_skips_when_a_peer_overflows():
    net, trainer = _tiny()
    x, y = _batch(8)
    recipe = Recipe(classes=4, num_epochs=2, base_lr=0.1)
    peer = _PeerDist([0, 8, 1, 0, 0])  # the other rank's gradients overflowed every step
    with pytest.raises(TrainingDiverged, match="gradients are not finite at epoch 0 step 0"):
        train_epoch(net, trainer, peer, _ListLoader([(x, y, 8)] * 2), recipe, 0)
    scaler = LossScaler(dynamic=True, init_scale=1024)
    stats = train_epoch(net, trainer, peer, _ListLoader([(x, y, 8)] * 3), recipe, 0, scaler)
    assert stats["skipped_steps"] == 3 and scaler.scale == 128
