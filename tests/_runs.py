"""Training runs as users start them, for the end-to-end tests: ``scripts/gluon/train.py`` in a
subprocess (with the test-only hooks of ``tests/_train_hooks.py`` unless told otherwise),
under ``horovodrun --gloo`` for more than one rank, and the shared reference runs.

A reference run is an uninterrupted run that several tests compare with (a killed and resumed
run must end with its weights) or continue (resumed onto another rank count, read by ranks
with other disks). The same arguments give one run per session, in a session folder named
after them; a test reads it through :meth:`ReferenceRuns.get` or works on its own copy
(:meth:`ReferenceRuns.copy`). Every hand-out checks the run's files against the manifest taken
when it finished, so a test that wrote into a shared run fails at once instead of misleading
the next one.
"""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = sys.executable
TRAIN = os.path.join(REPO, "scripts", "gluon", "train.py")
HOOKS = os.path.join(REPO, "tests", "_train_hooks.py")
HOROVODRUN = os.path.join(os.path.dirname(PY), "horovodrun")
# The flags every small run shares: the tiny model on the 32-px digits, one loader thread.
TINY = ["--model", "resnest_tiny", "--input-size", "32", "--crop-ratio", "1.0",
        "--data-nthreads", "1", "--no-progress"]


# The 2-rank reference run of test_scripts_train_resume.py, which kills, resumes and continues
# it: mixup and label smoothing (random draws on every rank), a complete checkpoint every epoch
# and every 5 steps, evaluated at its end. (It is no learning test: mixup on 2 epochs of the
# tiny model stays near 20% top-1; test_scripts_train.py's 2-rank run learns, without mixup.)
TWO_RANKS = ["--num-epochs", "2", "--batch-size", "32", "--lr", "0.05", "--mixup",
             "--label-smoothing", "--log-interval", "1", "--eval-frequency", "2",
             "--save-frequency", "1", "--save-interval-steps", "5", "--seed", "4", *TINY]
# The 1-rank reference run on the small digits, every recipe switch that draws random numbers.
ONE_RANK = ["--num-epochs", "2", "--batch-size", "16", "--lr", "0.1", "--warmup-epochs", "1",
            "--last-gamma", "--no-wd", "--label-smoothing", "--mixup", "--dropblock-prob",
            "0.1", "--log-interval", "1", "--save-frequency", "1", "--seed", "3", *TINY]


def data(pack):
    """The --rec-train/--rec-val arguments of a ``(train.rec, val.rec)`` pair or of the shared
    digits (conftest.digits)."""
    train_rec, val_rec = pack if isinstance(pack, tuple) else (pack.train_rec, pack.val_rec)
    return ["--rec-train", train_rec, "--rec-val", val_rec]


def env(threads=1, **extra):
    """The environment of a run: ``threads`` OpenMP threads, this tree first on the path."""
    out = dict(os.environ, OMP_NUM_THREADS=str(threads), **extra)
    out["PYTHONPATH"] = REPO + os.pathsep + out.get("PYTHONPATH", "")
    return out


def script(name):
    """The path of ``scripts/gluon/<name>`` (another training script for ``script=``)."""
    return os.path.join(REPO, "scripts", "gluon", name)


def command(*args, ranks=1, hooked=True, launcher=(), script=TRAIN):
    """The command line of a run of ``script`` (train.py) with ``args``; ``launcher`` goes
    between the Python interpreter and the script (e.g. a wrapper that changes each rank's
    folder)."""
    cmd = [PY, *launcher, *([HOOKS] if hooked else []), script, *map(str, args)]
    if ranks > 1:
        cmd = [HOROVODRUN, "-np", str(ranks), "--gloo", *cmd]
    return cmd


def train(*args, ranks=1, run_env=None, check=True, timeout=300, hooked=True, launcher=(),
          script=TRAIN):
    """Run ``script`` (train.py) to its end; returns the CompletedProcess (asserted successful
    with ``check``)."""
    proc = subprocess.run(command(*args, ranks=ranks, hooked=hooked, launcher=launcher,
                                  script=script),
                          env=run_env or env(), capture_output=True, text=True,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def start(*args, ranks=1, run_env=None, hooked=False, script=TRAIN):
    """``script`` (train.py) started in its own session (``os.killpg(proc.pid, ...)`` stops
    all of it); its output is discarded."""
    return subprocess.Popen(command(*args, ranks=ranks, hooked=hooked, script=script),
                            env=run_env or env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)


def stop(proc, sig=signal.SIGKILL):
    """Send ``sig`` to the session of ``proc`` (see :func:`start`) and wait for it."""
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
    proc.wait()


def epochs(save_dir):
    """The epoch rows of a run's metrics.jsonl."""
    with open(os.path.join(save_dir, "metrics.jsonl")) as f:
        return [r for r in map(json.loads, f) if r["kind"] == "epoch"]


def params(path):
    """The arrays of a .params file as numpy, by name (MXNet's own reader)."""
    import mxnet as mx
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}


def same(a, b):
    """Whether two :func:`params` dicts hold the same names and bit-identical arrays."""
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _manifest(folder):
    found = {}
    for base, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(base, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = hashlib.sha1(f.read()).hexdigest()
    return found


class ReferenceRuns:
    """One uninterrupted run per distinct argument list and rank count, in ``root``."""

    def __init__(self, root):
        self.root = str(root)
        self._done = {}

    def get(self, *args, ranks=1, threads=1):
        """The run folder of train.py with ``args`` (``--save-dir`` is added) on ``ranks``
        ranks, run now if this session has not run it yet. Read it, never write into it."""
        args = tuple(map(str, args))
        key = hashlib.sha1(json.dumps([args, ranks, threads]).encode()).hexdigest()[:12]
        folder = os.path.join(self.root, key)
        if key not in self._done:
            proc = train(*args, "--save-dir", folder, ranks=ranks, run_env=env(threads),
                         hooked=False, timeout=600)
            with open(os.path.join(self.root, key + ".txt"), "w") as f:
                f.write(" ".join([str(ranks), *args]) + "\n" + proc.stdout + proc.stderr)
            self._done[key] = _manifest(folder)
        assert _manifest(folder) == self._done[key], \
            f"a test wrote into the shared reference run {folder}; copy it first"
        return folder

    def copy(self, dest, *args, ranks=1, threads=1):
        """A copy of the run :meth:`get` gives, at ``dest`` (for tests that continue it)."""
        shutil.copytree(self.get(*args, ranks=ranks, threads=threads), dest, symlinks=True)
        return dest
