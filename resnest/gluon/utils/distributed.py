"""Distributed set-up: Horovod when launched by ``horovodrun`` (or mpirun), else one process.

Everything else talks to :class:`Dist`, so a single process runs the very same code path with
``size == 1`` (sums are then the identity). Also here: the guard that turns a dead or hung rank
into a non-zero exit within a bounded time instead of a job that hangs forever.
"""
import os
import pickle
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import mxnet as mx
import numpy as np

from .errors import UserError

__all__ = ["Dist", "setup_distributed", "launched_by_horovod", "Watchdog"]

_RANK_VARS = ("HOROVOD_RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK")


def launched_by_horovod(environ=None):
    """True when a Horovod/MPI launcher started this process (it sets a rank variable)."""
    environ = os.environ if environ is None else environ
    return any(v in environ for v in _RANK_VARS)


@dataclass
class Dist:
    """This worker's place in the job. ``hvd`` is the Horovod module, or None alone.

    ``contexts`` are the devices this process uses: one GPU per rank under Horovod, the first
    ``num_gpus`` GPUs of a single process (each batch is split over them), or the CPU.
    """
    rank: int
    size: int
    local_rank: int
    ctx: Any
    is_root: bool
    hvd: Any = None
    contexts: Any = None

    def __post_init__(self):
        if self.contexts is None:
            self.contexts = [self.ctx]

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
        """Copy rank 0's values of ``params`` (a ParameterDict) to every rank; a parameter
        whose initialisation is deferred gets them as soon as it is initialised."""
        if self.hvd is None:
            return
        ready = []
        for key, param in sorted(params.items()):
            try:
                ready.append(param.data())
            except mx.gluon.parameter.DeferredInitializationError:
                self._broadcast_once_initialised(param, f"params.{key}")
        self.broadcast_arrays(ready, "params")

    def _broadcast_once_initialised(self, param, name):
        init_impl = param._init_impl

        def init_then_broadcast(*args, **kwargs):
            init_impl(*args, **kwargs)
            self.broadcast_arrays([param.data()], name)
        param._init_impl = init_then_broadcast

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

    def failed_ranks(self, ok, name):
        """Every rank says whether its part worked; returns the ranks that failed (the same
        list on every rank), so all can stop together instead of waiting for a dead peer."""
        flags = np.zeros(self.size)
        flags[self.rank] = 0.0 if ok else 1.0
        return [int(r) for r in np.nonzero(self.allreduce_sum(flags, name))[0]]

    def broadcast_arrays(self, arrays, name):
        """Overwrite each NDArray, on every rank, with rank 0's values.

        Sent as a sum to which the other ranks add zeros (exact; -0.0 arrives as +0.0),
        never with Horovod's broadcast: with MXNet, Horovod 0.28's broadcast enqueue reads
        the op's name after the background thread may have completed the op and freed it
        (SIGSEGV on a loaded machine). A copy in MXNet's default layout is sent (Horovod
        cannot read arrays that oneDNN keeps in its own layout).
        """
        if self.hvd is None:
            return
        for i, arr in enumerate(arrays):
            tmp = arr.copy() if self.is_root else mx.nd.zeros_like(arr)
            self.hvd.allreduce_(tmp, op=self.hvd.Sum, name=f"{name}.{i}")
            arr[:] = tmp

    def gather_objects(self, obj, name):
        """``[rank 0's obj, rank 1's obj, ...]`` (picklable objects) on every rank."""
        if self.hvd is None:
            return [obj]
        return self.hvd.allgather_object(obj, name=name)

    def broadcast_object(self, obj, name):
        """Rank 0's ``obj`` (picklable) on every rank (through :meth:`broadcast_arrays`)."""
        if self.hvd is None:
            return obj
        data = pickle.dumps(obj) if self.is_root else b""
        size = int(self.allreduce_sum([len(data)], f"{name}.size")[0])
        buf = mx.nd.array(np.frombuffer(data, np.uint8) if self.is_root
                          else np.zeros(size, np.uint8), dtype="uint8")
        self.broadcast_arrays([buf], f"{name}.bytes")
        received = buf.asnumpy().tobytes()      # rank 0 waits too: nothing left in flight
        return obj if self.is_root else pickle.loads(received)


def setup_distributed(no_cuda=False, timeout=1800.0, num_gpus=None):
    """Initialise Horovod if a launcher started us; pick this process's devices.

    Every script starts here, so a single process and a Horovod job run the same code.

    Parameters
    ----------
    no_cuda : bool
        Use the CPU even when GPUs are present.
    timeout : float
        Seconds Horovod may wait on a rank before shutting the job down (its stall check;
        ``HOROVOD_STALL_*`` variables set by the user win).
    num_gpus : int or None
        None: one GPU per rank when GPUs are present. 0: the CPU. N: a single process uses
        GPUs 0..N-1 (batches are split over them); under Horovod each rank still uses one.

    Returns
    -------
    Dist
        rank, size, local_rank, ctx (``mx.gpu(local_rank)`` or ``mx.cpu()``), is_root,
        contexts.
    """
    hvd = None
    rank, size, local_rank = 0, 1, 0
    if launched_by_horovod():
        os.environ.setdefault("HOROVOD_STALL_CHECK_TIME_SECONDS", str(int(min(60, timeout))))
        os.environ.setdefault("HOROVOD_STALL_SHUTDOWN_TIME_SECONDS", str(int(timeout)))
        import horovod.mxnet as hvd
        hvd.init()
        rank, size, local_rank = hvd.rank(), hvd.size(), hvd.local_rank()
    available = 0 if no_cuda or num_gpus == 0 else mx.context.num_gpus()
    if num_gpus and num_gpus > available:
        raise UserError(f"--num-gpus {num_gpus} but this machine has {available} GPU(s); use "
                        "--num-gpus 0 for the CPU.")
    if available == 0:
        contexts = [mx.cpu()]
    elif hvd is not None or not num_gpus:
        contexts = [mx.gpu(local_rank)]
    else:
        contexts = [mx.gpu(i) for i in range(num_gpus)]
    return Dist(rank, size, local_rank, contexts[0], rank == 0, hvd, contexts)


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
