"""One training step and one epoch (:mod:`resnest.gluon.train.engine`) with the classification
recipe: learning, all-rank decisions (a peer's overflow or NaN), fp16 loss scaling, the NaN
pixel that oneDNN's ReLU hides, global numbers in the log."""
import math

import mxnet as mx
import numpy as np
import pytest

from _train import ONE, ListLoader, PeerDist, batch, tiny_net, weights
from resnest.gluon.train.classification import ClassificationRecipe
from resnest.gluon.train.engine import (LossScaler, PendingStep, TrainingDiverged, _grads_finite,
                                        train_epoch, train_step)
from resnest.gluon.train.scaling import optimizer_state_arrays


def _loss(classes=4, eps=0.0):
    return ClassificationRecipe(classes, 1, 0.1, smoothing_eps=eps).step_loss(0, 0, 0)


def _states(trainer):
    return [s.asnumpy().copy() for s in optimizer_state_arrays(trainer)]


def test_no_wd_exempts_bias_and_bn():
    net, trainer = tiny_net()
    mults = {k: v.wd_mult for k, v in net.collect_params().items()}
    assert all(m == 0 for k, m in mults.items() if k.endswith(("gamma", "beta", "bias")))
    assert all(m == 1 for k, m in mults.items() if k.endswith("weight"))


def test_train_step_learns_a_fixed_batch():
    net, trainer = tiny_net()
    x, y = batch()
    losses = [train_step(net, trainer, ONE, (x, y, 8), _loss(eps=0.1)).loss_sum
              for _ in range(15)]
    assert losses[-1] < 0.5 * losses[0]


def test_an_overflowing_fp16_step_changes_nothing_and_halves_the_scale():
    """The loss-scaled step decides on the device: it returns before its outcome is read, and
    an overflow leaves weights and optimizer state bit-identical."""
    net, trainer = tiny_net()
    x, y = batch()
    scaler = LossScaler(dynamic=True, init_scale=1024)
    train_step(net, trainer, ONE, (x, y, 8), _loss(), scaler)          # a clean step first
    before, states = weights(net), _states(trainer)
    assert states and any(np.abs(s).sum() > 0 for s in states)         # momentum exists
    huge = LossScaler(dynamic=True, init_scale=1e38, max_scale=1e38)    # x 1e38 overflows
    pending = train_step(net, trainer, ONE, (x, y, 8), _loss(), huge, wait=False)
    assert isinstance(pending, PendingStep)
    res = pending.result()
    assert res.skipped and res.overflow and math.isfinite(res.loss_sum)
    assert huge.scale == pytest.approx(5e37)                         # float32 on the device
    assert all(np.array_equal(before[k], v) for k, v in weights(net).items())
    assert all(np.array_equal(a, b) for a, b in zip(states, _states(trainer)))


def test_peer_overflow_skips_this_rank_too():
    net, trainer = tiny_net()
    x, y = batch()
    before = weights(net)
    # peer vector: [loss_sum, samples, overflow, bad_loss_rank0, bad_loss_rank1]
    res = train_step(net, trainer, PeerDist([1.0, 8, 1, 0, 0]), (x, y, 8), _loss())
    assert res.skipped and res.samples == 16
    assert all(np.array_equal(before[k], v) for k, v in weights(net).items())


def test_nan_loss_on_a_peer_stops_with_epoch_step_rank():
    net, trainer = tiny_net()
    x, y = batch(16)
    loader = ListLoader([(x, y, 16)] * 3)
    recipe = ClassificationRecipe(classes=4, num_epochs=2, base_lr=0.1)
    with pytest.raises(TrainingDiverged, match=r"epoch 1 step 0 on rank\(s\) 1"):
        train_epoch(net, trainer, PeerDist([0, 16, 0, 0, 1]), loader, recipe, epoch=1)


def test_a_nan_pixel_is_caught_although_the_loss_stays_finite():
    """oneDNN's ReLU maps NaN to 0: one NaN pixel leaves the loss finite but makes the stem's
    gradients NaN. The gradient check catches it: a waited step is skipped (weights intact),
    the epoch loop stops with the epoch and step."""
    net, trainer = tiny_net()
    x, y = batch()
    x[1, 0, 5, 5] = float("nan")                                 # one bad pixel in the batch
    before = weights(net)
    res = train_step(net, trainer, ONE, (x, y, 8), _loss())
    assert math.isfinite(res.loss_sum) and not res.bad_loss_ranks
    assert res.overflow and res.skipped
    assert all(np.array_equal(before[k], v) for k, v in weights(net).items())
    loader = ListLoader([(batch()[0], y, 8), (x, y, 8)])
    recipe = ClassificationRecipe(classes=4, num_epochs=1, base_lr=0.1)
    with pytest.raises(TrainingDiverged, match="gradients are not finite at epoch 0 step 1"):
        train_epoch(net, trainer, ONE, loader, recipe, 0)


def test_loss_scale_grows_after_a_window_up_to_its_maximum_and_survives_a_checkpoint():
    net, trainer = tiny_net()
    x, y = batch()
    s = LossScaler(dynamic=True, init_scale=8, window=3, max_scale=16)
    for step in range(7):
        train_step(net, trainer, ONE, (x, y, 8), _loss(), s)
        if step == 2:
            assert s.scale == 16                                    # 3 clean steps: doubled
    assert s.scale == 16 and s.state_dict() == {"scale": 16.0, "clean_steps": 1}
    again = LossScaler(dynamic=True, init_scale=8, window=3, max_scale=16)
    again.load_state_dict(s.state_dict())
    assert again.state_dict() == s.state_dict()
    assert LossScaler().scale == 1.0


def test_train_epoch_logs_global_numbers():
    net, trainer = tiny_net()
    x, y = batch(8)
    seen = []

    class Hooks:
        beats = 0

        def beat(self):
            Hooks.beats += 1

        def step(self, **kw):
            seen.append(kw)
    recipe = ClassificationRecipe(classes=4, num_epochs=2, base_lr=0.1, warmup_epochs=1,
                                  log_interval=2, mixup_alpha=0.2, smoothing_eps=0.1)
    stats = train_epoch(net, trainer, ONE, ListLoader([(x, y, 8)] * 5), recipe, 0,
                        hooks=Hooks())
    assert Hooks.beats == 5 and [s["step"] for s in seen] == [1, 3, 4]
    assert stats["samples"] == 40 and stats["skipped_steps"] == 0
    assert stats["lr"] == pytest.approx(0.1 * 4 / 5)   # warm-up step 4 of 5
    assert recipe.mixup_on(0) and not ClassificationRecipe(
        4, 10, 0.1, mixup_alpha=0.2, mixup_off_epoch=2).mixup_on(8)


def test_finite_check_handles_hundreds_of_gradients():
    class P:
        grad_req = "write"

        def __init__(self, value):
            self._g = mx.nd.full((3,), value)

        def grad(self):
            return self._g
    # Element by element: huge finite gradients whose sum overflows float32 are not an
    # overflow; one Inf among 450 arrays is.
    params = [P(3e38) for _ in range(450)]
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.float32(3e38) * np.float32(3))
    assert _grads_finite(params).asscalar() == 1
    params[401] = P(float("inf"))
    assert _grads_finite(params).asscalar() == 0


def test_fp32_stops_and_fp16_skips_when_a_peer_overflows():
    net, trainer = tiny_net()
    x, y = batch(8)
    recipe = ClassificationRecipe(classes=4, num_epochs=2, base_lr=0.1)
    peer = PeerDist([0, 8, 1, 0, 0])  # the other rank's gradients overflowed every step
    with pytest.raises(TrainingDiverged, match="gradients are not finite at epoch 0 step 0"):
        train_epoch(net, trainer, peer, ListLoader([(x, y, 8)] * 2), recipe, 0)
    scaler = LossScaler(dynamic=True, init_scale=1024)
    stats = train_epoch(net, trainer, peer, ListLoader([(x, y, 8)] * 3), recipe, 0, scaler)
    assert stats["skipped_steps"] == 3 and scaler.scale == 128
