"""Processes as /proc shows them, for tests that kill a parent and watch its children."""
import os
import signal
import time


def alive(pid):
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f'/proc/{pid}/stat') as fstat:
            return fstat.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError:
        return False


def descendants(pid):
    """Pids of every living process below ``pid`` (from /proc)."""
    parents = {}
    for entry in os.listdir('/proc'):
        if entry.isdigit():
            try:
                with open(f'/proc/{entry}/stat') as fstat:
                    fields = fstat.read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if fields[0] != 'Z':
                parents.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def kill_and_watch(proc, pids, seconds=15):
    """SIGKILL ``proc`` (a Popen), wait up to ``seconds`` for ``pids`` to end; returns those
    still alive, after killing them so that a failing test leaves nothing behind."""
    proc.kill()
    proc.wait()
    deadline = time.time() + seconds
    while time.time() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    left = [p for p in pids if alive(p)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left
