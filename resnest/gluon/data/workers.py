"""Worker processes for the packer and the Python loader: started safely, bound to their
parent's life, and read in order.

* :func:`worker_context` -- ``fork`` (instant) from a process with only the few threads that
  importing MXNet starts; ``forkserver`` from one where MXNet's engine, Horovod or CUDA run
  (forking those can deadlock the child or corrupt the driver state).
* :func:`die_with_parent` -- called first in every worker: Linux sends the worker SIGKILL when
  its parent dies (``prctl(PR_SET_PDEATHSIG)``), so a ``kill -9`` of the packer or of a
  training rank leaves no worker blocked forever on its task queue. Under ``forkserver`` the
  parent is the fork server, which exits when the main process does.
* :func:`ordered_results` -- submit tasks with a bounded look-ahead and yield the results in
  submission order, so output never depends on the number of workers.
"""
import ctypes
import multiprocessing
import os
import signal
import sys
from collections import deque

_PR_SET_PDEATHSIG = 1


def die_with_parent():
    """Have the kernel SIGKILL this process when its parent exits (Linux; elsewhere a no-op).
    If the parent is already gone (it died before this ran), exit at once."""
    parent = os.getppid()
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent or parent == 1:
        os._exit(1)


def init_worker(setup=None, *args):
    """Pool initializer: die with the parent, leave Ctrl-C to the parent (which stops the
    pool; a worker must not die half-way on it), one OpenCV thread, then ``setup(*args)``."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import cv2
    cv2.setNumThreads(1)
    if setup is not None:
        setup(*args)


def worker_context():
    """The multiprocessing context to start workers from this process (see module doc).

    It also starts the resource tracker here first, so that the workers share this process's
    tracker (a forked child would otherwise start its own): shared memory a worker makes and
    this process frees is then tracked once, and freed by it should this process die."""
    from multiprocessing import resource_tracker
    resource_tracker.ensure_running()
    try:
        threads = len(os.listdir('/proc/self/task'))
    except OSError:
        threads = 0
    # An initialised Horovod runs exactly 4 threads before MXNet's first operation (main,
    # background loop, two Gloo loops): the thread count alone would fork it.
    hvd = sys.modules.get('horovod.mxnet')
    horovod = hvd is not None and hvd.is_initialized()
    if 0 < threads <= 4 and not horovod and 'fork' in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context('fork')
    context = multiprocessing.get_context('forkserver')
    context.set_forkserver_preload([__name__, 'cv2', 'numpy'])
    return context


def ordered_results(executor, fn, tasks, depth, discard=None):
    """Yield ``(task, fn(task))`` in the order of ``tasks``, with at most ``depth`` tasks
    submitted ahead; a generator closed early cancels what was not started, and passes the
    results of what was (once they are done) to ``discard``."""
    pending, todo = deque(), iter(tasks)
    try:
        for task in todo:
            pending.append((task, executor.submit(fn, task)))
            if len(pending) >= depth:
                break
        while pending:
            task, future = pending.popleft()
            result = future.result()
            nxt = next(todo, None)
            if nxt is not None:
                pending.append((nxt, executor.submit(fn, nxt)))
            yield task, result
    finally:
        for _, future in pending:
            if not future.cancel() and discard is not None:
                future.add_done_callback(lambda f: f.exception() or discard(f.result()))
