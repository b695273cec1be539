"""Horovod detection, the watchdog that ends a rank whose peers died or hung, and Dist's
broadcasts on two real Horovod ranks: rank 0's values arrive exactly, and Horovod's own
broadcast (whose enqueue reads freed memory under load, see ``Dist.broadcast_arrays``) is
never entered: the ranks run with it replaced by a function that fails."""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO
from resnest.gluon.utils.distributed import launched_by_horovod

HOROVODRUN = os.path.join(os.path.dirname(sys.executable), "horovodrun")

# Rank 0's values (a subnormal, infinities, the largest float32, a negative zero) and what
# rank 1 holds before; -0.0 arrives as +0.0 (a sum with the other ranks' zeros).
ROOT = [1.5, -2.25, 1e-45, float("inf"), float("-inf"), 3.4028235e38, -0.0, 7.0]
OTHER = [9.0, 9.0, 9.0, 9.0, 9.0, 9.0, 9.0, -7.0]
WANT = [1.5, -2.25, 1e-45, float("inf"), float("-inf"), 3.4028235e38, 0.0, 7.0]

WORKER = """
import json, sys
import mxnet as mx, numpy as np
from resnest.gluon.utils.distributed import setup_distributed

dist = setup_distributed()

def refuse(*args, **kwargs):
    raise AssertionError("Horovod's broadcast was entered")
for name in ("broadcast", "broadcast_", "broadcast_parameters", "broadcast_object"):
    setattr(dist.hvd, name, refuse)

values = mx.nd.array(np.array(ROOT if dist.is_root else OTHER, np.float32))
ints = mx.nd.array(np.arange(5) * (3 if dist.is_root else -1), dtype="int32")
dist.broadcast_arrays([values, ints], "arrays")

mx.random.seed(dist.rank)
net = mx.gluon.nn.HybridSequential()
net.add(mx.gluon.nn.Dense(3, in_units=4), mx.gluon.nn.Dense(2))   # the second one: deferred
net.initialize(mx.init.Uniform())
dist.broadcast_parameters(net.collect_params())
net(mx.nd.ones((1, 4)))                                  # finishes the deferred initialisation

obj = dist.broadcast_object({"classes": ["a", "b"], "epoch": 3} if dist.is_root else None,
                            "obj")
with open(sys.argv[1] + f"/rank{dist.rank}.json", "w") as f:
    json.dump({"bits": values.asnumpy().view(np.uint32).tolist(),
               "ints": ints.asnumpy().tolist(), "obj": obj,
               "params": {k: p.data().asnumpy().tolist()
                          for k, p in sorted(net.collect_params().items())}}, f)
"""


def test_broadcasts_give_every_rank_rank_0s_values_without_horovods_broadcast(tmp_path):
    if not os.path.isfile(HOROVODRUN):
        pytest.skip("horovodrun is not installed")
    script = tmp_path / "worker.py"
    script.write_text(f"from math import inf\nROOT = {ROOT!r}\nOTHER = {OTHER!r}\n" + WORKER)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([HOROVODRUN, "-np", "2", "--gloo", sys.executable, str(script),
                           str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    want_bits = np.array(WANT, np.float32).view(np.uint32).tolist()
    for got in ranks:
        assert got["bits"] == want_bits                  # the same bits on every rank
        assert got["ints"] == [0, 3, 6, 9, 12]
        assert got["obj"] == {"classes": ["a", "b"], "epoch": 3}
    # Different seeds drew different initial weights; rank 0's are now everywhere,
    # including those of the layer whose initialisation was deferred to the forward pass.
    assert ranks[0]["params"] == ranks[1]["params"]
    assert len(ranks[0]["params"]) == 4


def test_horovod_detection():
    assert launched_by_horovod({"HOROVOD_RANK": "1"}) and not launched_by_horovod({})


def test_watchdog_exits_nonzero_when_no_progress():
    code = ("from resnest.gluon.utils.distributed import Watchdog; import time; "
            "w = Watchdog(1.0, rank=3).start(); "
            "[ (w.beat(), time.sleep(0.2)) for _ in range(10) ]; time.sleep(30)")
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    elapsed = time.monotonic() - start
    assert proc.returncode == 3 and "rank 3 made no progress" in proc.stderr
    assert 3.0 <= elapsed < 15  # alive while beating (2 s), dead ~1 s after
