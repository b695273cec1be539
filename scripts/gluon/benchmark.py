"""Inference latency and throughput of ResNeSt models, side by side with other implementations.

    python scripts/gluon/benchmark.py --models resnest50 --batch-sizes 1 16 \
        --dtypes float32 int8 --baseline authors gluoncv --onnx --json bench.json --chart bench.png

Per model x batch size x input size, every candidate (ours per dtype, optimized by
``resnest.gluon.inference.optimize``; ``--plain`` ours hybridized only; baselines plain
hybridized fp32; onnxruntime) is timed model-only on one random batch, in interleaved rounds
in this one process, after warm-up, each call synchronised. Reports median / p90 / p99 ms per
batch, img/s, the speed-up over each baseline, parameters and GFLOPs.
"""
import argparse
import csv
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from resnest.gluon.utils.cli import run_cli  # noqa: E402
from resnest.gluon.utils.threads import own_threads  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["resnest50"])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 16])
    p.add_argument("--input-sizes", nargs="+", type=int, default=[224])
    p.add_argument("--dtypes", nargs="+", default=["float32"],
                   choices=("float32", "bfloat16", "int8", "float16"))
    p.add_argument("--plain", action="store_true", help="also time our bare hybridized model")
    p.add_argument("--baseline", nargs="*", default=[], choices=("authors", "gluoncv"),
                   help="time these implementations (plain fp32) beside ours")
    p.add_argument("--onnx", action="store_true", help="also time our ONNX export in onnxruntime")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    p.add_argument("--runs", type=int, default=2, help="timed calls per candidate per round")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--num-gpus", type=int, default=0)
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--csv", metavar="FILE")
    p.add_argument("--chart", metavar="PNG", help="latency per image vs published top-1")
    p.add_argument("--verbose", action="store_true", help="also show MXNet's native log lines")
    return p.parse_args(argv)


def main(argv=None):
    threads = own_threads()
    args = parse_args(argv)
    import mxnet as mx
    from tools.inference_bench import benchmark_rows, draw_chart, print_rows
    ctx = mx.gpu(0) if args.num_gpus > 0 else mx.cpu()
    rows = []
    for model in args.models:
        for input_size in args.input_sizes:
            for batch_size in args.batch_sizes:
                group = benchmark_rows(args, model, batch_size, input_size, ctx, threads)
                print_rows(group)
                rows += group
    print(f"OMP_NUM_THREADS={threads}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)
    if args.csv:
        keys = sorted({k for r in rows for k in r})
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
    if args.chart:
        draw_chart(rows, args.chart)
    return 0


if __name__ == "__main__":
    run_cli(main)
