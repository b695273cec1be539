"""Atomic writes (:mod:`resnest.gluon.utils.io`): a failed write keeps the previous file, a
replaced group never shows its old marker beside new companions, and the temporary files of a
writer killed with ``kill -9`` are removed by the next write into the folder."""
import os
import signal
import subprocess
import sys

import pytest

from resnest.gluon.utils import io


def _writer(payload, fail=False):
    def write(path):
        with open(path, "wb") as f:
            f.write(payload[:3])
            if fail:
                raise IOError("disk full")
            f.write(payload[3:])
    return write


def test_atomic_write_keeps_previous_file_on_failure(tmp_path):
    path = tmp_path / "a.params"
    io.atomic_write(str(path), _writer(b"1" * 100))
    with pytest.raises(IOError):
        io.atomic_write(str(path), _writer(b"2" * 100, fail=True))
    assert path.read_bytes() == b"1" * 100
    assert sorted(os.listdir(tmp_path)) == ["a.params"]  # no temp file left


def test_a_replaced_group_loses_its_old_marker_before_any_companion_changes(tmp_path,
                                                                            monkeypatch):
    """Renames are watched one by one: when the first new companion lands, the old marker
    (the last file of the group) is already gone."""
    a, marker = tmp_path / "x.idx", tmp_path / "x.rec"
    a.write_text("old idx")
    marker.write_text("old rec")
    seen = []
    real = os.replace

    def replace(src, dst):
        seen.append((os.path.basename(dst), marker.exists()))
        real(src, dst)
    monkeypatch.setattr(io.os, "replace", replace)
    with io.atomic_group([str(a), str(marker)]) as tmp:
        for path, text in ((a, "new idx"), (marker, "new rec")):
            with open(tmp[str(path)], "w") as f:
                f.write(text)
    assert seen == [("x.idx", False), ("x.rec", False)]
    assert (a.read_text(), marker.read_text()) == ("new idx", "new rec")


def test_a_killed_writers_temporary_file_is_swept_by_the_next_write(tmp_path):
    """A real ``kill -9`` in the middle of a write leaves its temporary file; the next write
    into the folder removes it, and leaves a live writer's file alone."""
    code = (f"import time; from resnest.gluon.utils.io import atomic_write\n"
            f"def w(p):\n    open(p, 'wb').write(b'part'); print('writing', flush=True); "
            f"time.sleep(60)\n"
            f"atomic_write({str(tmp_path / 'a.params')!r}, w)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    stale = [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]
    assert len(stale) == 1 and f".{proc.pid}.tmp" in stale[0]
    live = os.path.basename(io.temp_path(str(tmp_path / "b.params")))   # this live process
    (tmp_path / live).write_bytes(b"in progress")
    io.write_text(str(tmp_path / "c.txt"), "hello")
    assert sorted(os.listdir(tmp_path)) == sorted([live, "c.txt"])
