"""The one way every command-line script starts and ends.

:func:`run_cli` runs a script's ``main(argv)``: a :class:`UserError` becomes ``error: <one
sentence>`` on stderr and exit code 2, Ctrl-C exit code 130, never a traceback. Run from the
command line (``argv`` not given), it first keeps MXNet's native log lines (``[12:00:00]
../src/io/iter_image_recordio_2.cc:177: ImageRecordIOParser2: ... use 1 threads for
decoding..``) off the console: those come from C++ ``LOG(INFO)`` and no MXNet setting
silences them, so the process's stderr (file descriptor 2) is routed through a small filter
process that drops exactly that line format and forwards everything else at once. The filter
outlives a crashing or ``os._exit``-ing script until the last byte is forwarded. ``--verbose``
on any script's command line (or ``RESNEST_VERBOSE=1``) keeps everything.
"""
import os
import re
import signal
import sys
import warnings

from .errors import UserError
from .io import STORAGE_ERRNOS
from .processes import Terminated, handle_termination

__all__ = ["run_cli", "quiet_native_logs", "is_native_log_line"]

# dmlc-core's log prefix: "[hh:mm:ss] path/to/file.cc:123: message".
_NATIVE = re.compile(rb"^\[\d\d:\d\d:\d\d\] \S+\.(?:cc|cpp|cu|h):\d+: ")
_TEMPLATE = b"[00:00:00] "


def is_native_log_line(line):
    """Whether ``line`` (bytes) is one of MXNet's C++ log lines."""
    return bool(_NATIVE.match(line))


def _may_become_native(partial):
    """Whether an unfinished line could still turn out to be a native log line."""
    for got, want in zip(partial[:len(_TEMPLATE)], _TEMPLATE):
        if (want == ord("0") and not 48 <= got <= 57) or (want != ord("0") and got != want):
            return False
    return len(partial) < 4096


def _filter_loop(read_fd, out_fd):
    pending = b""
    while True:
        try:
            data = os.read(read_fd, 1 << 16)
        except InterruptedError:
            continue
        if not data:
            break
        *lines, pending = (pending + data).split(b"\n")
        out = b"".join(line + b"\n" for line in lines if not is_native_log_line(line))
        if pending and not _may_become_native(pending):
            out, pending = out + pending, b""      # progress bars ("\r...") go out at once
        while out:
            out = out[os.write(out_fd, out):]
    if pending and not is_native_log_line(pending):
        os.write(out_fd, pending)


def quiet_native_logs():
    """Route this process's stderr through a filter process that drops MXNet's native log
    lines. Call before ``import mxnet``; a no-op with ``RESNEST_VERBOSE=1``. Returns whether
    the filter was installed."""
    if os.environ.get("RESNEST_VERBOSE") == "1":
        return False
    os.environ.setdefault("MXNET_SUBGRAPH_VERBOSE", "0")    # "Subgraph backend ... activated"
    warnings.filterwarnings("ignore", module=r"mxnet(\.|$)")
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:                                            # the filter process
        try:
            signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C: let the script report it
            os.close(write_fd)
            keep = {read_fd, 2}
            for fd in range(3, 1024):                      # hold no pipe of our parent open
                if fd not in keep:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
            os.close(1)
            _filter_loop(read_fd, 2)
        finally:
            os._exit(0)
    os.close(read_fd)
    os.dup2(write_fd, 2)
    os.close(write_fd)
    return True


def run_cli(main, argv=None, interrupted="interrupted"):
    """Run ``main(argv)`` and exit with its code: 2 with one sentence on a :class:`UserError`,
    130 and ``error: <interrupted>`` on Ctrl-C, 128 + the signal on SIGTERM or SIGHUP (after
    the same clean-up, :mod:`.processes`); a file-system error (read-only, full, no permission,
    missing folder) that reaches it is one sentence and exit 2 as well. With ``argv`` None (a
    real command line) MXNet's native log lines are filtered out unless ``--verbose`` is among
    the arguments."""
    handle_termination()
    if argv is None:
        argv = sys.argv[1:]
        if "--verbose" in argv:
            os.environ["RESNEST_VERBOSE"] = "1"
        quiet_native_logs()
    try:
        code = main(list(argv))
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except OSError as err:
        if err.errno not in STORAGE_ERRNOS or not err.filename:
            raise
        # a read-only, full or forbidden output place that no writer above turned into a
        # sentence: still one sentence (the writers are atomic, so nothing is half-written)
        print(f"error: cannot use {err.filename}: {err.strerror}.", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print(f"error: {interrupted}", file=sys.stderr)
        sys.exit(130)
    except Terminated as err:
        print(f"error: {interrupted} ({err}); stopped cleanly.", file=sys.stderr)
        sys.exit(err.code)
    sys.exit(code or 0)
