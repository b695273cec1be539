"""Distributed set-up: Horovod when launched by ``horovodrun`` (or mpirun), else one process.

Everything else talks to :class:`Dist`, so a single process runs the very same code path with
``size == 1`` (sums are then the identity). Also here: the guard that turns a dead or hung rank
into a non-zero exit within a bounded time instead of a job that hangs forever.

Test hook (used only by ``tests/test_train_script.py``): ``RESNEST_TEST_FAULT=die:R:E:S``
makes rank ``R`` call ``os._exit(1)`` before step ``S`` of epoch ``E``; ``hang:R:E:S`` makes it
sleep forever there instead.
"""
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import mxnet as mx
import numpy as np

__all__ = ["Dist", "setup_distributed", "launched_by_horovod", "Watchdog", "inject_fault"]

_RANK_VARS = ("HOROVOD_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK")


def launched_by_horovod(environ=None):
    """True when a Horovod/MPI launcher started this process (it sets a rank variable)."""
    environ = os.environ if environ is None else environ
    return any(v in environ for v in _RANK_VARS)


@dataclass
class Dist:
    """This worker's place in the job. ``hvd`` is the Horovod module, or None alone."""
    rank: int
    size: int
    local_rank: int
    ctx: Any
    is_root: bool
    hvd: Any = None

    def allreduce_start(self, values, name):
        """Start summing a small vector (numpy-like or NDArray) over all ranks; returns a
        float64 NDArray that is ready when read (``.asnumpy()`` waits)."""
        if isinstance(values, mx.nd.NDArray):
            values = values.reshape((-1,)).astype("float64")
        else:
            values = mx.nd.array(np.asarray(values, dtype=np.float64).reshape(-1),
                                 dtype="float64")
        if self.hvd is not None:
            values = self.hvd.allreduce(values, average=False, name=name)
        return values

    def allreduce_sum(self, values, name):
        """Element-wise sum over all ranks, waited for, as a float64 numpy vector."""
        return self.allreduce_start(values, name).asnumpy()

    def broadcast_parameters(self, params):
        """Copy rank 0's values of ``params`` (a ParameterDict) to every rank."""
        if self.hvd is not None:
            self.hvd.broadcast_parameters(params, root_rank=0)

    def average_in_place(self, arrays, name):
        """Replace each NDArray by its mean over all ranks (e.g. BN running statistics)."""
        if self.hvd is not None:
            for i, arr in enumerate(arrays):
                self.hvd.allreduce_(arr, average=True, name=f"{name}.{i}")

    def trainer(self, params, optimizer, optimizer_params, prefix=None):
        """``hvd.DistributedTrainer`` (gradients averaged over ranks), or a plain Trainer.
        Two trainers in one process need different ``prefix`` es (Horovod tensor names)."""
        if self.hvd is not None:
            return self.hvd.DistributedTrainer(params, optimizer, optimizer_params,
                                               prefix=prefix)
        return mx.gluon.Trainer(params, optimizer, optimizer_params, kvstore=None)

    def barrier(self, name="barrier"):
        """Wait until every rank gets here."""
        self.allreduce_sum([0.0], name)


def setup_distributed(no_cuda=False, timeout=1800.0):
    """Initialise Horovod if a launcher started us; pick this rank's context.

    Parameters
    ----------
    no_cuda : bool
        Use the CPU even when GPUs are present.
    timeout : float
        Seconds Horovod may wait on a rank before shutting the job down (its stall check;
        ``HOROVOD_STALL_*`` variables set by the user win).

    Returns
    -------
    Dist
        rank, size, local_rank, ctx (``mx.gpu(local_rank)`` or ``mx.cpu()``), is_root.
    """
    hvd = None
    rank, size, local_rank = 0, 1, 0
    if launched_by_horovod():
        os.environ.setdefault("HOROVOD_STALL_CHECK_TIME_SECONDS", str(int(min(60, timeout))))
        os.environ.setdefault("HOROVOD_STALL_SHUTDOWN_TIME_SECONDS", str(int(timeout)))
        import horovod.mxnet as hvd
        hvd.init()
        rank, size, local_rank = hvd.rank(), hvd.size(), hvd.local_rank()
    use_gpu = not no_cuda and mx.context.num_gpus() > 0
    ctx = mx.gpu(local_rank) if use_gpu else mx.cpu()
    return Dist(rank, size, local_rank, ctx, rank == 0, hvd)


class Watchdog:
    """Exit the process non-zero when :meth:`beat` has not been called for ``timeout`` s.

    A rank waiting in a collective for a dead or hung peer never returns; this thread notices
    and ends the process (code 3), after which ``horovodrun`` stops the remaining ranks.
    """

    def __init__(self, timeout, rank=0, exit_code=3):
        self.timeout, self.rank, self.exit_code = float(timeout), rank, exit_code
        self._last = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="watchdog")

    def start(self):
        self._last = time.monotonic()
        self._thread.start()
        return self

    def beat(self):
        """Record progress."""
        self._last = time.monotonic()

    def stop(self):
        self._stop.set()

    def _run(self):
        period = max(0.05, min(5.0, self.timeout / 10))
        while not self._stop.wait(period):
            idle = time.monotonic() - self._last
            if idle > self.timeout:
                sys.stderr.write(f"error: rank {self.rank} made no progress for {idle:.0f} s "
                                 f"(--timeout {self.timeout:g}); another rank probably died or "
                                 "hung, exiting.\n")
                sys.stderr.flush()
                os._exit(self.exit_code)


def inject_fault(rank, epoch, step, environ=None):
    """Die or hang here if ``RESNEST_TEST_FAULT`` asks for it (tests only; see module doc)."""
    spec = (os.environ if environ is None else environ).get("RESNEST_TEST_FAULT")
    if not spec:
        return
    kind, r, e, s = spec.split(":")
    if (int(r), int(e), int(s)) != (rank, epoch, step):
        return
    if kind == "die":
        sys.stderr.write(f"test fault: rank {rank} exits at epoch {epoch} step {step}\n")
        os._exit(1)
    while True:
        time.sleep(3600)
