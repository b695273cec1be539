"""Dynamic loss scaling for fp16 training, decided on the device: no host wait per step.

A step of fp16 training multiplies the loss by ``scale`` before backward; whether the step is
applied depends on every rank's gradients and loss being finite (the all-rank sums of the
engine's step statistics). Reading that answer on the host would stop the GPU pipeline once per
step, so the decision never leaves the device: the gradients are divided by the scale, the
optimizer update is computed, and each weight and optimizer-state array keeps its new value
only where the step was clean (``where(ok, new, old)``), all as queued device operations. The
scale halves after an overflow (not below ``min_scale``) and doubles after ``window`` clean
steps (not above ``max_scale``), also on the device. The host reads the scale only to log it
and to checkpoint it.
"""
import mxnet as mx

__all__ = ["LossScaler", "optimizer_state_arrays"]


class LossScaler:
    """Loss scaling; ``dynamic=False`` (fp32) keeps the scale at 1 and does nothing.

    Parameters
    ----------
    dynamic : bool
    init_scale, min_scale, max_scale : float
        Starting value and bounds of the scale (2**16, 1, 2**24).
    window : int
        Clean steps in a row before the scale doubles.
    """

    def __init__(self, dynamic=False, init_scale=2.0 ** 16, window=2000, min_scale=1.0,
                 max_scale=2.0 ** 24):
        self.dynamic = dynamic
        self.window, self.min_scale, self.max_scale = window, min_scale, max_scale
        self._start = (min(float(init_scale), max_scale), 0.0)
        self._scale = self._clean = None                       # (1,) arrays on the device

    def _arrays(self, ctx):
        if self._scale is None or self._scale.context != ctx:
            scale, clean = (self._start if self._scale is None
                            else (self.scale, float(self._clean.asscalar())))
            self._scale = mx.nd.full((1,), scale, ctx=ctx)
            self._clean = mx.nd.full((1,), clean, ctx=ctx)
        return self._scale, self._clean

    @property
    def scale(self):
        """The current scale as a number (reads the device: for logs and checkpoints)."""
        if not self.dynamic:
            return 1.0
        return float(self._scale.asscalar()) if self._scale is not None else self._start[0]

    def scale_loss(self, loss):
        """``loss * scale`` (queued on the loss's device)."""
        if not self.dynamic:
            return loss
        scale, _ = self._arrays(loss.context)
        return mx.nd.broadcast_mul(loss, scale.astype(loss.dtype))

    def step(self, trainer, ok, batch_size):
        """The optimizer update of one step, kept only where ``ok`` (a (1,) array: 1 when all
        ranks' gradients and losses were finite), and the scale's next value; nothing waits."""
        scale, clean = self._arrays(ok.context)
        okf = ok.astype("float32")
        params = [p for p in trainer._params if p.grad_req != "null"]
        for p in params:
            for g in p.list_grad():
                g[:] = mx.nd.broadcast_div(g, _like(scale, g))
        old_weights = [(w, w.copy()) for p in params for w in p.list_data()]
        old_states = [(s, s.copy()) for s in optimizer_state_arrays(trainer)]
        known = {id(s) for s, _ in old_states}
        trainer.update(batch_size)
        new_states = [s for s in optimizer_state_arrays(trainer) if id(s) not in known]
        for arr, before in old_weights + old_states:
            arr[:] = mx.nd.where(mx.nd.broadcast_to(_like(okf, arr), shape=arr.shape), arr,
                                 before)
        for arr in new_states:                 # created by this update: zeros if skipped
            arr[:] = mx.nd.where(mx.nd.broadcast_to(_like(okf, arr), shape=arr.shape), arr,
                                 mx.nd.zeros_like(arr))
        clean[:] = (clean + 1) * okf
        grow = clean >= self.window
        grown = mx.nd.minimum(scale * 2, mx.nd.full((1,), self.max_scale, ctx=scale.context))
        shrunk = mx.nd.maximum(scale / 2, mx.nd.full((1,), self.min_scale, ctx=scale.context))
        scale[:] = mx.nd.where(okf, mx.nd.where(grow, grown, scale), shrunk)
        clean[:] = mx.nd.where(grow, mx.nd.zeros_like(clean), clean)

    def at_minimum(self):
        """Whether the scale is at ``min_scale`` (reads the device)."""
        return self.dynamic and self.scale <= self.min_scale

    def state_dict(self):
        """``{'scale', 'clean_steps'}`` for the checkpoint (reads the device)."""
        clean = float(self._clean.asscalar()) if self._clean is not None else self._start[1]
        return {"scale": self.scale, "clean_steps": int(clean)}

    def load_state_dict(self, state):
        if self.dynamic and state:
            self._start = (float(state["scale"]), float(state["clean_steps"]))
            self._scale = self._clean = None


def _like(value, arr):
    """A (1,) array reshaped, placed and typed to broadcast against ``arr``."""
    return value.reshape((1,) * arr.ndim).as_in_context(arr.context).astype(arr.dtype)


def optimizer_state_arrays(trainer):
    """Every NDArray of the optimizer's state (momentum, fp32 master weights, ...)."""
    out = []
    for updater in trainer._updaters:
        for _, state in sorted(updater.states.items()):
            for item in (state if isinstance(state, (list, tuple)) else [state]):
                if isinstance(item, mx.nd.NDArray):
                    out.append(item)
    return out
