"""How worker processes are started: never a plain fork from a process where Horovod runs."""
import os
import subprocess
import sys

from conftest import REPO

CODE = """
import os
import mxnet, horovod.mxnet as hvd
from resnest.gluon.data.workers import worker_context
before = worker_context().get_start_method()
hvd.init()
print(before, len(os.listdir('/proc/self/task')), worker_context().get_start_method())
"""


def test_an_initialised_horovod_gets_forkserver_workers_not_fork():
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    before, threads, after = proc.stdout.split()
    # A bare process may fork; once Horovod's threads run it must not, even though it has
    # no more threads (4) than the fork rule allows.
    assert before == "fork" and int(threads) <= 4 and after == "forkserver"
