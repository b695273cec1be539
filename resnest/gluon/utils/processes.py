"""Every process a command starts ends when it ends: the one home of that rule.

* :func:`handle_termination` (installed by :func:`~.cli.run_cli` for every script): SIGTERM,
  what a cluster scheduler sends on pre-emption, and SIGHUP become a :class:`Terminated`
  exception in the main thread, so the same clean-up as for Ctrl-C runs (worker pools shut
  down, temporary files removed, locks released). A main thread blocked inside a native call
  cannot see the exception; a watchdog ends the process anyway after ``grace`` seconds.
* :func:`die_with_parent` (called first in every worker process): the kernel SIGKILLs the
  worker when its parent exits, ``kill -9`` included.
* :func:`detach_from_forkserver` (also in every worker): Python hands each forkserver child
  the write end of the pipe by which the fork server notices that its client died; a worker
  holding it keeps the fork server, and therefore itself, alive for ever after a ``kill`` of
  the main process (measured: a SIGTERM'd ``train.py`` left the fork server, 6 workers, the
  resource tracker and the log filter running, and ``train.py | tee log`` never returned).
  Closing it in the worker lets the fork server exit with the main process, and the workers
  with it.
* :func:`termination_deferred` -- a signal that arrives while a worker is being started is
  raised when the start is complete, so every worker that exists is one the pool knows and
  shuts down (a half-started forkserver child found its parent's semaphores gone and printed
  a traceback).
* :func:`wait_until` -- every wait is bounded and says what it waits for.
"""
import contextlib
import ctypes
import os
import signal
import sys
import threading
import time

from .errors import UserError

__all__ = ["Terminated", "handle_termination", "termination_deferred", "die_with_parent",
           "detach_from_forkserver", "wait_until"]

_DEFERRED = {"depth": 0, "signum": None}

_PR_SET_PDEATHSIG = 1


class Terminated(BaseException):
    """The process was asked to stop (SIGTERM, SIGHUP); ``code`` is the exit code to use."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.code = 128 + signum


def handle_termination(grace=30.0):
    """Turn SIGTERM and SIGHUP into :class:`Terminated` in the main thread (call from it).

    After the first signal, a daemon thread ends the process with the signal's exit code if it
    is still running ``grace`` seconds later (a main thread stuck in a native wait, e.g. for a
    dead Horovod peer, never reaches Python code to raise).
    """
    def handler(signum, frame):
        def deadline():
            time.sleep(grace)
            sys.stderr.write(f"error: {signal.Signals(signum).name} received {grace:.0f} s ago "
                             "and the process has not ended; exiting now.\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        threading.Thread(target=deadline, daemon=True, name="termination-deadline").start()
        signal.signal(signum, signal.SIG_DFL)      # a second signal ends it at once
        if _DEFERRED["depth"]:
            _DEFERRED["signum"] = signum
            return
        raise Terminated(signum)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handler)


@contextlib.contextmanager
def termination_deferred():
    """Inside the block, a SIGTERM or SIGHUP (see :func:`handle_termination`) is held and
    raised as :class:`Terminated` when the block ends (the grace watchdog still runs)."""
    _DEFERRED["depth"] += 1
    try:
        yield
    finally:
        _DEFERRED["depth"] -= 1
        if not _DEFERRED["depth"] and _DEFERRED["signum"] is not None:
            signum, _DEFERRED["signum"] = _DEFERRED["signum"], None
            raise Terminated(signum)


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


def detach_from_forkserver():
    """In a forkserver child: close the inherited write end of the fork server's liveness pipe
    (see the module doc). A no-op in other processes."""
    import multiprocessing
    from multiprocessing import forkserver
    if multiprocessing.parent_process() is None:       # the main process owns the pipe
        return
    server = forkserver._forkserver
    fd = getattr(server, "_forkserver_alive_fd", None)
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
        server._forkserver_alive_fd = None


def wait_until(ready, timeout, what, poll=0.5, say=None):
    """Call ``ready()`` until it is true; after ``timeout`` seconds raise :class:`UserError`
    saying what was waited for. ``say(message)``, when given, is told once, at the first miss,
    what is being waited for."""
    deadline, told = time.monotonic() + timeout, False
    while not ready():
        if time.monotonic() >= deadline:
            raise UserError(f"gave up after {timeout:.0f} s waiting for {what}.")
        if say is not None and not told:
            say(f"waiting for {what} (at most {timeout:.0f} s)")
            told = True
        time.sleep(poll)
