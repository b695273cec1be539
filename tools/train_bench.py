"""Speed of the training step: the recipe's step against a minimal hand-written Gluon loop.

Both run the same model, batch and (Horovod) trainer on the same in-memory batch, in
alternating rounds so that machine noise hits both alike; the recipe's step adds mixup,
label smoothing, the loss/overflow allreduce, the LR schedule and the metrics hook. The data
pipeline is timed alone, to show whether it can keep up with the step.
"""
import json
import os
import statistics
import subprocess
import sys
import time

import mxnet as mx
from mxnet import autograd

from resnest.gluon.utils.errors import UserError

from resnest.gluon.train.engine import LossScaler, Recipe, train_epoch

__all__ = ["time_rounds", "minimal_loop", "recipe_loop", "loader_rate", "measure", "scaling"]


def minimal_loop(net, trainer, x, y, steps):
    """``steps`` plain Gluon steps (softmax cross-entropy, ``trainer.step``); returns seconds."""
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(steps):
        with autograd.record():
            loss = loss_fn(net(x), y)
        loss.backward()
        trainer.step(x.shape[0])
    mx.nd.waitall()
    return time.perf_counter() - start


class _Repeat:
    """A loader yielding one in-memory batch ``steps`` times."""

    def __init__(self, x, y, steps):
        self.x, self.y, self.steps = x, y, steps

    def set_epoch(self, epoch, start_batch=0):
        pass

    def __len__(self):
        return self.steps

    def __iter__(self):
        return ((self.x, self.y, self.x.shape[0]) for _ in range(self.steps))


def recipe_loop(net, trainer, dist, x, y, steps, classes, monitor=None, log_interval=10):
    """``steps`` steps of the real epoch loop (mixup, smoothing, warm-up/cosine LR, global
    sums, the metrics hook) on one in-memory batch; returns seconds."""
    recipe = Recipe(classes=classes, num_epochs=10, base_lr=0.1, warmup_epochs=1,
                    smoothing_eps=0.1, mixup_alpha=0.2, log_interval=log_interval)
    start = time.perf_counter()
    train_epoch(net, trainer, dist, _Repeat(x, y, steps), recipe, 2, LossScaler(), monitor)
    mx.nd.waitall()
    return time.perf_counter() - start


def time_rounds(loops, rounds, barrier=None):
    """Run each ``loops[name]()`` (returns seconds) ``rounds`` times, alternating; returns the
    median seconds per name."""
    times = {name: [] for name in loops}
    for _ in range(rounds):
        for name, loop in loops.items():
            if barrier is not None:
                barrier()
            times[name].append(loop())
    return {name: statistics.median(t) for name, t in times.items()}


def loader_rate(loader, batches):
    """Images per second the loader alone delivers over ``batches`` batches (after one)."""
    loader.set_epoch(0)
    it = iter(loader)
    next(it)
    start, n = time.perf_counter(), 0
    for _ in range(batches):
        try:
            data, _, _ = next(it)
        except StopIteration:
            break
        data.wait_to_read()
        n += data.shape[0]
    return n / (time.perf_counter() - start)


def measure(args):
    """Time both loops (and the loader) in this process; returns the numbers on rank 0."""
    import mxnet as mx
    from resnest.gluon.utils.distributed import setup_distributed
    from resnest.gluon.train.monitor import Monitor
    from resnest.gluon.train.runner import build_net, build_trainer
    import tempfile

    dist = setup_distributed(no_cuda=True)
    mx.random.seed(0)
    shape = (args.batch_size, 3, args.input_size, args.input_size)
    x = mx.nd.random.normal(shape=shape, ctx=dist.ctx)
    y = mx.nd.array(mx.nd.random.randint(0, args.classes, shape=(args.batch_size,)).asnumpy(),
                    ctx=dist.ctx)
    nets = {}
    for name in ("minimal", "recipe"):
        net = build_net(args.model, args.classes, dist.ctx)
        dist.broadcast_parameters(net.collect_params())
        mx.nd.waitall()  # both nets have the same parameter names: one broadcast at a time
        nets[name] = (net, build_trainer(net, dist, "nag", 0.01, 0.9, 1e-4, no_wd=True,
                                                  prefix=name))
    with tempfile.TemporaryDirectory() as tmp:
        mon = Monitor(tmp, dist.is_root, progress=False)
        mon.log.handlers = [h for h in mon.log.handlers if h.__class__.__name__ !=
                            "_TqdmHandler"]  # keep the log file, not the console
        loops = {"minimal": lambda: minimal_loop(*nets["minimal"], x, y, args.steps),
                 "recipe": lambda: recipe_loop(*nets["recipe"], dist, x, y, args.steps,
                                               args.classes, mon, log_interval=2)}
        for loop in loops.values():  # warm-up: graph building, oneDNN primitives
            loop()
        secs = time_rounds(loops, args.rounds, dist.barrier)
        mon.close()
    images = args.steps * args.batch_size * dist.size
    out = {"model": args.model, "input_size": args.input_size, "batch_per_rank":
           args.batch_size, "ranks": dist.size,
           "threads_per_rank": os.environ.get("OMP_NUM_THREADS", "unset"),
           "minimal_img_per_sec": images / secs["minimal"],
           "recipe_img_per_sec": images / secs["recipe"],
           "recipe_overhead_pct": 100 * (secs["recipe"] / secs["minimal"] - 1)}
    if args.rec_train:
        from resnest.gluon.data import train_loader
        loader = train_loader(args.rec_train, args.batch_size, input_size=args.input_size,
                              rank=dist.rank, num_ranks=dist.size,
                              num_workers=args.data_nthreads)
        rate = loader_rate(loader, batches=max(4, args.steps))
        out["loader_img_per_sec_per_rank"] = rate
        out["loader_vs_step"] = rate / (out["recipe_img_per_sec"] / dist.size)
    return out if dist.is_root else None


def scaling(args, argv, script):
    """Run this script under horovodrun for 1..N ranks; returns one result per rank count."""
    horovodrun = os.path.join(os.path.dirname(sys.executable), "horovodrun")
    cores = os.cpu_count() or 1
    results = []
    for ranks in range(1, args.scaling + 1):
        inner = [a for a in argv if a not in ("--scaling", str(args.scaling))]
        env = dict(os.environ, OMP_NUM_THREADS=str(max(1, cores // ranks)))
        cmd = [horovodrun, "-np", str(ranks), "--gloo", sys.executable, script, *inner,
               "--json", "/dev/stdout"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise UserError(f"horovodrun -np {ranks} failed: {proc.stderr.strip()[-300:]}")
        line = [ln for ln in proc.stdout.splitlines() if '"recipe_img_per_sec"' in ln][-1]
        results.append(json.loads(line[line.index("{"):]))
    base = results[0]["recipe_img_per_sec"]
    for r in results:
        r["scaling_vs_1_rank"] = r["recipe_img_per_sec"] / base
    return results
