"""Many small broadcasts in flight at once on every Horovod rank: the reproduction of the
SIGSEGV that made ``make test`` red by chance (issue 18), and the check of its fix.

    horovodrun -np 2 --gloo python tools/broadcast_stress.py --mode horovod --rounds 1000
    horovodrun -np 2 --gloo python tools/broadcast_stress.py --mode dist --rounds 1000

``--mode horovod`` calls Horovod's own ``broadcast_``: in Horovod 0.28.1 with MXNet its enqueue
(``EnqueueTensorBroadcast``, horovod/common/operations.cc) logs the tensor's name after
handing the op to the background thread, which may already have completed it and freed the
name with the op's parameters; a rank then dies in ``memcpy`` under
``std::operator<<``. Seen here in 1 of 1 runs of 1000 rounds on a loaded 2-core machine.
``--mode dist`` sends the same arrays through ``Dist.broadcast_arrays`` (a sum to which the
other ranks add zeros), which the project's code uses everywhere. Run with
``PYTHONFAULTHANDLER=1`` and ``ulimit -c unlimited`` to get the stacks (MXNet's own SIGSEGV
handler prints only "Segmentation fault: 11" and exits without a core).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=["horovod", "dist"], default="dist")
    p.add_argument("--rounds", type=int, default=1000)
    p.add_argument("--width", type=int, default=64, help="broadcasts in flight per round")
    args = p.parse_args(argv)
    import mxnet as mx
    from resnest.gluon.utils.distributed import setup_distributed
    dist = setup_distributed()
    if dist.hvd is None:
        raise SystemExit("run under horovodrun (one process has nothing to broadcast)")
    arrays = [mx.nd.full((16,), dist.rank + 1.0) for _ in range(args.width)]
    start = time.time()
    for _ in range(args.rounds):
        if args.mode == "horovod":
            for i, arr in enumerate(arrays):
                dist.hvd.broadcast_(arr, root_rank=0, name=f"stress.{i}")
        else:
            dist.broadcast_arrays(arrays, "stress")
        mx.nd.waitall()
    ok = all(float(a.min().asscalar()) == 1.0 == float(a.max().asscalar()) for a in arrays)
    print(f"rank {dist.rank}: {args.rounds * args.width} broadcasts ({args.mode}) in "
          f"{time.time() - start:.1f} s, rank 0's values everywhere: {ok}", flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
