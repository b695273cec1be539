"""Horovod detection and the watchdog that ends a rank whose peers died or hung."""
import subprocess
import sys
import time

from resnest.gluon.utils.distributed import launched_by_horovod


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
