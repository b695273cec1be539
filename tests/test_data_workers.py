"""The loaders' worker processes (:mod:`resnest.gluon.data.workers`): they live across epochs,
die with a killed parent, leave no shared memory behind, and are never a plain fork from a
process where Horovod runs."""
import os
import subprocess
import sys

import numpy as np

from _procs import descendants as _descendants, kill_and_watch
from conftest import REPO as ROOT
from resnest.gluon.data import eval_loader


class PidTransform:
    """Stands in for a transform: the image becomes the id of the process that made it."""

    def __call__(self, img, rng=None):
        return np.full((1, 2, 2), os.getpid(), np.float32)


def test_worker_processes_live_across_epochs_and_evaluations(photo_rec):
    loader = eval_loader(photo_rec, 4, PidTransform(), num_workers=2)
    pids = []
    for _ in range(3):
        pids.append({int(p) for data, _, _ in loader for p in data.asnumpy().ravel()})
    loader.set_epoch(1)
    pids.append({int(p) for data, _, _ in loader for p in data.asnumpy().ravel()})
    every = set().union(*pids)
    # the same two workers served every pass (which of them made which batch may vary)
    assert os.getpid() not in every and len(every) <= 2 and all(pids)
    loader.close()


def test_loader_workers_die_with_a_killed_trainer(photo_rec):
    code = ('import sys, time\n'
            'from resnest.gluon.data import train_loader\n'
            f'loader = train_loader({photo_rec!r}, 4, input_size=32, num_workers=2, '
            'backend="python")\n'
            'next(iter(loader))\n'
            'print("ready", flush=True)\n'
            'time.sleep(600)\n')
    proc = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.stdout.readline().strip() == 'ready'
    children = _descendants(proc.pid)
    assert len(children) >= 2                      # the workers (and a fork server)
    alive = kill_and_watch(proc, children)
    assert alive == []


def test_batches_left_unread_free_their_shared_memory(photo_rec):
    code = ('from resnest.gluon.data import train_loader\n'
            f'loader = train_loader({photo_rec!r}, 2, input_size=32, num_workers=2, '
            'backend="python")\n'
            'for _ in loader:\n'
            '    break\n'                              # batches in flight are never read
            'print(sum(d.shape[0] for d, _, _ in loader))\n')
    before = set(os.listdir('/dev/shm'))
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0 and proc.stdout.strip() == '22', proc.stderr[-2000:]
    # nothing left for the resource tracker to find and warn about, nothing left behind
    assert 'leaked' not in proc.stderr and 'resource_tracker' not in proc.stderr
    assert not {n for n in set(os.listdir('/dev/shm')) - before if n.startswith('psm_')}


CODE = """
import os
import mxnet, horovod.mxnet as hvd
from resnest.gluon.data.workers import worker_context
before = worker_context().get_start_method()
hvd.init()
print(before, len(os.listdir('/proc/self/task')), worker_context().get_start_method())
"""


def test_an_initialised_horovod_gets_forkserver_workers_not_fork():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    before, threads, after = proc.stdout.split()
    # A bare process may fork; once Horovod's threads run it must not, even though it has
    # no more threads (4) than the fork rule allows.
    assert before == "fork" and int(threads) <= 4 and after == "forkserver"
