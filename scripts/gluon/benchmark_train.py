"""Training-step speed: the recipe's step vs a minimal Gluon loop, the data pipeline alone, and
Horovod's scaling over ranks on this machine.

    python scripts/gluon/benchmark_train.py --model resnest50 --batch-size 16
    python scripts/gluon/benchmark_train.py --model resnest50 --scaling 2 --rec-train t.rec

    OMP_NUM_THREADS=1 python scripts/gluon/benchmark_train.py --autoaug

With ``--autoaug`` it compares the AutoAugment training input per core instead: the authors'
pipeline against ours, one worker process each pinned to one core, alternating rounds (see
tools/train_bench.py). With ``--scaling N`` the script starts itself under
``horovodrun -np 1..N --gloo`` (threads per
rank = cores / ranks) and prints the global img/s of each; otherwise it measures this process
(or, under horovodrun, the job it is part of).
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from resnest.gluon.utils.cli import run_cli  # noqa: E402
from resnest.gluon.utils.io import write_json  # noqa: E402


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
    p.add_argument("--autoaug", action="store_true",
                   help="compare the AutoAugment input per core: the authors' vs ours")
    p.add_argument("--autoaug-rec", default="", help="use this .rec (default: 500x375 "
                   "sample-photo JPEGs packed at --resize 480 in a temporary folder)")
    p.add_argument("--autoaug-images", type=int, default=256)
    p.add_argument("--autoaug-profile", action="store_true",
                   help="also time each stage of both pipelines, in this process")
    p.add_argument("--gpu-img-per-sec", type=float, nargs="+", default=[400.0, 800.0],
                   help="training speeds per GPU to turn into cores per GPU")
    p.add_argument("--json", default="", help="write the numbers here (rank 0)")
    p.add_argument("--verbose", action="store_true", help="also show MXNet's native log lines")
    return p.parse_args(argv)


def autoaug(args):
    """The --autoaug comparison; returns the result dict."""
    import tempfile
    from tools.train_bench import (autoaug_per_core, autoaug_stage_ms, pin,
                                   sample_photo_rec)
    with tempfile.TemporaryDirectory() as tmp:
        rec = args.autoaug_rec or sample_photo_rec(tmp, args.autoaug_images)
        r = autoaug_per_core(rec, args.batch_size, rounds=args.rounds,
                             input_size=args.input_size)
        if args.autoaug_profile:
            pin(os.getpid(), max(os.sched_getaffinity(0)))
            r["stage_ms"] = autoaug_stage_ms(rec, input_size=args.input_size)
    r["cores_per_gpu"] = {str(g): {"ours": g / r["ours_img_per_sec_per_core"],
                                   "authors": g / r["authors_img_per_sec_per_core"]}
                          for g in args.gpu_img_per_sec}
    print(f"AutoAugment input at {args.input_size}, 1 worker process each, OMP_NUM_THREADS="
          f"{r['omp_num_threads']}, median of {r['rounds']} alternating rounds: per CPU-second "
          f"of the worker, authors' {r['authors_img_per_sec_per_core']:.1f} img/s, ours "
          f"{r['ours_img_per_sec_per_core']:.1f} img/s ({r['speedup']:.2f}x); both pinned to "
          f"one core, wall clock: {r['authors_img_per_sec_pinned_wall']:.1f} vs "
          f"{r['ours_img_per_sec_pinned_wall']:.1f} img/s ({r['speedup_wall']:.2f}x)")
    for gpu, cores in r["cores_per_gpu"].items():
        print(f"  a GPU at {float(gpu):.0f} img/s needs {cores['ours']:.1f} cores of ours "
              f"({cores['authors']:.1f} of the authors')")
    for name, stages in r.get("stage_ms", {}).items():
        print(f"  {name}, ms per image: " + ", ".join(f"{k} {v:.2f}" for k, v in stages.items())
              + f" (sum {sum(stages.values()):.2f})")
    return r


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.autoaug:
        for var in ("OMP_NUM_THREADS", "MXNET_CPU_WORKER_NTHREADS"):   # before MXNet starts
            os.environ.setdefault(var, "1")
        result = autoaug(args)
        if args.json:
            write_json(args.json, result)
        return 0
    from resnest.gluon.utils.threads import own_threads
    own_threads()                         # OMP_NUM_THREADS = this rank's cores, as train.py
    from tools.train_bench import measure, scaling
    results = scaling(args, argv, __file__) if args.scaling else [measure(args)]
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
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    run_cli(main)
