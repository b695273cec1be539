"""CPU threads: MXNet reads ``OMP_NUM_THREADS`` once, at import, and otherwise runs one
thread per process here, which halves CPU speed. Import this module (it does not import MXNet)
and call :func:`own_threads` before anything imports ``mxnet``.

Spin-waiting. Between two parallel regions, GNU OpenMP (MXNet's pip wheel links libgomp) and
onnxruntime keep their idle threads spinning for a while instead of sleeping. On cores of
one's own that is the fastest choice; when another process takes one of the cores, every
parallel region waits for a de-scheduled thread and batch-1 latency swings several-fold
(docs/inference.md, "On a shared machine"). :func:`own_threads` with ``shared=True`` (or
``RESNEST_SHARED_CPU=1``)
turns spinning off: ``GOMP_SPINCOUNT=0`` for MXNet and ``allow_spinning=0`` for onnxruntime.
"""
import os

__all__ = ["own_threads", "cpu_threads", "spin_wait"]


def own_threads(shared=None):
    """Set ``OMP_NUM_THREADS`` to this process's share of its cores (its CPU affinity divided by
    the local Horovod/MPI ranks) unless the user set it; returns the thread count.

    ``shared=True`` (default: ``RESNEST_SHARED_CPU=1`` in the environment) also turns off the
    OpenMP spin-wait (``GOMP_SPINCOUNT=0``, unless set) for a machine whose cores other
    processes use; call it before ``import mxnet``.
    """
    if "OMP_NUM_THREADS" not in os.environ:
        cores = len(os.sched_getaffinity(0))
        local = int(os.environ.get("HOROVOD_LOCAL_SIZE",
                                   os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE", "1")))
        os.environ["OMP_NUM_THREADS"] = str(max(1, cores // max(1, local)))
    if shared is None:
        shared = os.environ.get("RESNEST_SHARED_CPU") == "1"
    if shared:
        os.environ["RESNEST_SHARED_CPU"] = "1"
        os.environ.setdefault("GOMP_SPINCOUNT", "0")
    return int(os.environ["OMP_NUM_THREADS"])


def cpu_threads():
    """Threads an inference engine should use: ``OMP_NUM_THREADS`` when set, else the cores
    this process may run on."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else len(os.sched_getaffinity(0))


def spin_wait():
    """Whether engines that choose at run time (onnxruntime) may spin-wait: not when
    ``RESNEST_SHARED_CPU=1`` or ``GOMP_SPINCOUNT=0``."""
    return not (os.environ.get("RESNEST_SHARED_CPU") == "1"
                or os.environ.get("GOMP_SPINCOUNT") == "0")
