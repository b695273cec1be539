"""Training-step speed: the recipe's step vs a minimal Gluon loop, the data pipeline alone, and
Horovod's scaling over ranks on this machine.

    python scripts/gluon/benchmark_train.py --model resnest50 --batch-size 16
    python scripts/gluon/benchmark_train.py --model resnest50 --scaling 2 --rec-train t.rec

With ``--scaling N`` the script starts itself under ``horovodrun -np 1..N --gloo`` (threads per
rank = cores / ranks) and prints the global img/s of each; otherwise it measures this process
(or, under horovodrun, the job it is part of).
"""
import argparse
import json
import os
import subprocess
import sys

from resnest.gluon.errors import UserError, run_cli


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="resnest50")
    p.add_argument("--input-size", type=int, default=224)
    p.add_argument("--batch-size", type=int, default=16, help="per rank")
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--steps", type=int, default=5, help="steps per timed round")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (median)")
    p.add_argument("--rec-train", default="", help="also time the training loader on it")
    p.add_argument("--data-nthreads", type=int, default=2)
    p.add_argument("--scaling", type=int, default=0, metavar="N",
                   help="run under horovodrun with 1..N ranks and compare")
    p.add_argument("--json", default="", help="write the numbers here (rank 0)")
    return p.parse_args(argv)


def measure(args):
    """Time both loops (and the loader) in this process; returns the numbers on rank 0."""
    import mxnet as mx
    from resnest.gluon.train.benchmark import loader_rate, minimal_loop, recipe_loop, \
        time_rounds
    from resnest.gluon.train.distributed import setup_distributed
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


def scaling(args, argv):
    """Run this script under horovodrun for 1..N ranks; returns one result per rank count."""
    horovodrun = os.path.join(os.path.dirname(sys.executable), "horovodrun")
    cores = os.cpu_count() or 1
    results = []
    for ranks in range(1, args.scaling + 1):
        inner = [a for a in argv if a not in ("--scaling", str(args.scaling))]
        env = dict(os.environ, OMP_NUM_THREADS=str(max(1, cores // ranks)))
        cmd = [horovodrun, "-np", str(ranks), "--gloo", sys.executable, __file__, *inner,
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


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    results = scaling(args, argv) if args.scaling else [measure(args)]
    if results[0] is None:
        return 0
    for r in results:
        print(json.dumps(r, sort_keys=True) if args.json == "/dev/stdout" else
              f"{r['model']}@{r['input_size']} batch {r['batch_per_rank']}/rank, "
              f"{r['ranks']} rank(s) x {r['threads_per_rank']} threads: minimal loop "
              f"{r['minimal_img_per_sec']:.1f} img/s, recipe step "
              f"{r['recipe_img_per_sec']:.1f} img/s ({r['recipe_overhead_pct']:+.1f}%)"
              + (f", loader alone {r['loader_img_per_sec_per_rank']:.0f} img/s/rank "
                 f"({r['loader_vs_step']:.1f}x the step)" if "loader_vs_step" in r else "")
              + (f", scaling x{r['scaling_vs_1_rank']:.2f}" if "scaling_vs_1_rank" in r
                 else ""))
    if args.json and args.json != "/dev/stdout":
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    run_cli(main)
