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
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from resnest.gluon.utils.cli import run_cli  # noqa: E402


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
    p.add_argument("--verbose", action="store_true", help="also show MXNet's native log lines")
    return p.parse_args(argv)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
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
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    run_cli(main)
