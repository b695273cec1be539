"""Nothing is overwritten without --force (:mod:`resnest.gluon.utils.outputs`): an existing
output is refused in one sentence, and an output held by a live process is refused naming it,
and free again the moment that process dies, ``kill -9`` included."""
import os
import signal
import subprocess
import sys

import pytest

from resnest.gluon.utils.errors import UserError
from resnest.gluon.utils.outputs import OutputLock, refuse_existing


def test_an_existing_output_is_refused_unless_forced(tmp_path):
    (tmp_path / "a.rec").write_bytes(b"data")
    with pytest.raises(UserError, match="a.rec already exists; pass --force"):
        refuse_existing([str(tmp_path / "a.rec"), str(tmp_path / "b.rec")])
    assert refuse_existing([str(tmp_path / "a.rec")], force=True) == [str(tmp_path / "a.rec")]
    assert refuse_existing([str(tmp_path / "none")]) == []


@pytest.mark.parametrize("prefix", [False, True])
def test_a_held_output_is_refused_naming_its_holder_until_it_dies(tmp_path, prefix):
    target = str(tmp_path / ("out" if prefix else "run"))
    code = (f"import time; from resnest.gluon.utils.outputs import OutputLock\n"
            f"OutputLock({target!r}, prefix={prefix}).acquire(); print('held', flush=True); "
            f"time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=f"in use by another run \\(pid {proc.pid} on "):
            OutputLock(target, what="the output", prefix=prefix).acquire()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    with OutputLock(target, prefix=prefix):                 # free once its holder is dead
        with pytest.raises(UserError, match="in use"):
            OutputLock(target, prefix=prefix).acquire()    # and held again, by us
