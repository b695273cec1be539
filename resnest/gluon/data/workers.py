"""Worker processes for the packer and the Python loader: started safely, bound to their
parent's life, and read in order.

* :func:`worker_context` -- ``fork`` (instant) from a process with only the few threads that
  importing MXNet starts; ``forkserver`` from one where MXNet's engine, Horovod or CUDA run
  (forking those can deadlock the child or corrupt the driver state). The fork server of a
  process that has imported MXNet imports it too (once, before it forks any worker: the
  evaluation transform runs MXNet's own resize in the workers, and each worker would
  otherwise import MXNet itself, seconds apiece); :func:`start_worker_server` starts it
  early, so that its imports run while this process does other work.
* :func:`init_worker` -- first thing in every worker: it dies with its parent and does not
  keep the fork server alive (:mod:`resnest.gluon.utils.processes`), so a ``kill -9`` of the
  packer or of a training rank leaves no worker behind.
* :func:`ordered_results` -- submit tasks with a bounded look-ahead and yield the results in
  submission order, so output never depends on the number of workers; :func:`ordered_map`
  does it on a pool of its own that ends with the iteration (the packer, ``predict.py``).
"""
import multiprocessing
import os
import signal
import sys
from collections import deque
from concurrent.futures import ProcessPoolExecutor

from ..utils.processes import detach_from_forkserver, die_with_parent, termination_deferred


def init_worker(setup=None, *args):
    """Pool initializer: die with the parent, leave Ctrl-C to the parent (which stops the
    pool; a worker must not die half-way on it), one OpenCV thread, then ``setup(*args)``."""
    die_with_parent()
    detach_from_forkserver()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    import cv2
    cv2.setNumThreads(1)
    if setup is not None:
        setup(*args)


def worker_context(shared_memory=False):
    """The multiprocessing context to start workers from this process (see module doc).

    With ``shared_memory`` (workers that hand back batches in shared memory) it also starts
    the resource tracker here first, so that the workers share this process's tracker (a
    forked child would otherwise start its own): shared memory a worker makes and this process
    frees is then tracked once, and freed by it should this process die."""
    if shared_memory:
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
    context.set_forkserver_preload([__name__, 'cv2', 'numpy']
                                   + (['mxnet'] if 'mxnet' in sys.modules else []))
    return context


def start_worker_server(shared_memory=False):
    """Start the fork server now if workers started from this process would come from one
    (see :func:`worker_context`); a no-op otherwise, or when it already runs. Its imports then
    overlap with this process's work until the first worker is asked for."""
    context = worker_context(shared_memory)
    if context.get_start_method() == 'forkserver':
        from multiprocessing import forkserver
        forkserver.ensure_running()


def ordered_results(executor, fn, tasks, depth, discard=None):
    """Yield ``(task, fn(task))`` in the order of ``tasks``, with at most ``depth`` tasks
    submitted ahead; a generator closed early cancels what was not started, and passes the
    results of what was (once they are done) to ``discard``."""
    pending, todo = deque(), iter(tasks)

    def submit(task):              # a submit may start a worker: never half-way on a signal
        with termination_deferred():
            pending.append((task, executor.submit(fn, task)))
    try:
        for task in todo:
            submit(task)
            if len(pending) >= depth:
                break
        while pending:
            task, future = pending.popleft()
            result = future.result()
            nxt = next(todo, None)
            if nxt is not None:
                submit(nxt)
            yield task, result
    finally:
        for _, future in pending:
            if not future.cancel() and discard is not None:
                future.add_done_callback(lambda f: f.exception() or discard(f.result()))


_STATE = {}


def _call(task):
    fn, value = _STATE["fn"], _STATE["value"]
    return fn(value, task)


def _setup_map(fn, value):
    _STATE["fn"], _STATE["value"] = fn, value


def ordered_map(fn, value, tasks, workers, depth=None):
    """Yield ``(task, fn(value, task))`` in the order of ``tasks``, computed on ``workers``
    processes (``value`` is sent to each worker once; ``fn`` must be a module-level function),
    or in this process when ``workers`` <= 1. The pool is started here and shut down when the
    iteration ends, however it ends."""
    if workers <= 1:
        for task in tasks:
            yield task, fn(value, task)
        return
    pool = ProcessPoolExecutor(workers, mp_context=worker_context(), initializer=init_worker,
                               initargs=(_setup_map, fn, value))
    try:
        yield from ordered_results(pool, _call, tasks, depth or 2 * workers)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
