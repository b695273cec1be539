"""CPU threads: MXNet reads ``OMP_NUM_THREADS`` once, at import, and otherwise runs one
thread per process here, which halves CPU speed. Import this module (it does not import MXNet)
and call :func:`own_threads` before anything imports ``mxnet``.
"""
import os

__all__ = ["own_threads"]


def own_threads():
    """Set ``OMP_NUM_THREADS`` to this process's share of its cores (its CPU affinity divided by
    the local Horovod/MPI ranks) unless the user set it; returns the thread count."""
    if "OMP_NUM_THREADS" not in os.environ:
        cores = len(os.sched_getaffinity(0))
        local = int(os.environ.get("HOROVOD_LOCAL_SIZE",
                                   os.environ.get("OMPI_COMM_WORLD_LOCAL_SIZE", "1")))
        os.environ["OMP_NUM_THREADS"] = str(max(1, cores // max(1, local)))
    return int(os.environ["OMP_NUM_THREADS"])
