"""Every process a command starts ends when it ends (:mod:`resnest.gluon.utils.processes`):
attacked with real scripts that start worker processes, stopped by SIGTERM (a scheduler's
pre-emption) and by ``kill -9``, read through a pipe as ``| tee`` would."""
import os
import signal
import subprocess
import sys
import time

import pytest

from _procs import alive, descendants
from conftest import REPO

PY = sys.executable


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO)


def _start(cmd):
    """The command in its own session, its stdout and stderr one pipe (as ``| tee``)."""
    return subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def _workers_up(proc, count, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        kids = descendants(proc.pid)
        if len(kids) >= count:
            time.sleep(1.0)
            return descendants(proc.pid)
        time.sleep(0.2)
    raise AssertionError(f"{count} helper processes never started: {descendants(proc.pid)}")


def _ended(pids, seconds=20):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    left = [p for p in pids if alive(p)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left


def _train_cmd(digits, save_dir):
    return [PY, os.path.join(REPO, "scripts", "gluon", "train.py"), "--rec-train",
            digits.train_rec, "--rec-val", digits.val_rec, "--model",
            "resnest_tiny", "--input-size", "32", "--crop-ratio", "1", "--batch-size", "16",
            "--num-epochs", "50", "--loader-backend", "python", "--data-nthreads", "3",
            "--save-dir", str(save_dir), "--no-progress", "--log-interval", "10"]


@pytest.mark.parametrize("how", ["SIGTERM", "SIGKILL"])
def test_a_stopped_training_leaves_no_process_and_its_pipe_ends(digits, tmp_path, how):
    """train.py with the Python loader's worker processes (a fork server, 3 workers, the
    resource tracker, the log filter): stopped, every one of them ends, the pipe reader sees
    the end of the output, and with SIGTERM the exit code is 143 and no temporary file is
    left in the run folder."""
    proc = _start(_train_cmd(digits, tmp_path / "run"))
    helpers = _workers_up(proc, 5)
    os.kill(proc.pid, getattr(signal, how))
    try:
        out, _ = proc.communicate(timeout=60)          # returns only when every writer closed
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("the pipe never ended: a helper still holds it")
    assert _ended(helpers) == []
    if how == "SIGTERM":
        assert proc.returncode == 143, out.decode()[-2000:]
        assert b"stopped cleanly" in out and b"Traceback" not in out
        assert not [n for n in os.listdir(tmp_path / "run") if n.endswith(".tmp")]


def test_a_stopped_pack_leaves_no_process_and_no_temporary_file(digits, tmp_path):
    """im2rec.py with 2 encoding workers, stopped by SIGTERM while packing: exit 143, no
    worker left, no hidden temporary file, no output under its final name."""
    images = digits.train
    proc = _start([PY, os.path.join(REPO, "scripts", "dataset", "im2rec.py"), str(images),
                   str(tmp_path / "out"), "--workers", "2", "--no-progress", "--resize", "600",
                   "--quality", "100"])
    helpers = _workers_up(proc, 2)
    os.kill(proc.pid, signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 143, out.decode()[-2000:]
    assert _ended(helpers) == []
    assert os.listdir(tmp_path) == []
