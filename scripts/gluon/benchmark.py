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
import sys

from resnest.gluon.threads import own_threads

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
    return p.parse_args(argv)


def _size(model, input_size, classes):
    import mxnet as mx
    from resnest.gluon import get_model
    from resnest.gluon.flops import count_macs, count_params
    net = get_model(model, classes=classes)
    net.initialize()
    net(mx.nd.zeros((1, 3, 64, 64)))
    return count_params(net) / 1e6, 2 * count_macs(net, input_size) / 1e9


def _rows(args, model, batch_size, input_size, ctx, threads):
    from resnest.gluon import PRETRAINED
    from resnest.gluon.benchmark import build_candidates, summarize, time_interleaved
    found, skipped = build_candidates(model, batch_size, input_size, args.dtypes, args.plain,
                                      args.baseline, args.onnx, args.classes, ctx)
    for label, reason in skipped:
        print(f"skipped {label}: {reason}", file=sys.stderr)
    times = time_interleaved({c.label: c.fn for c in found},
                             {c.label: c.inputs for c in found},
                             rounds=args.rounds, runs_per_round=args.runs, warmup=args.warmup)
    params_m, gflops = _size(model, input_size, args.classes)
    rows = []
    for c in found:
        info = PRETRAINED.get(c.model)
        row = dict(model=c.model, impl=c.impl, dtype=c.dtype, mode=c.mode,
                   input_size=input_size, threads=threads,
                   **summarize(times[c.label], batch_size).as_dict())
        if c.impl == "ours":
            row.update(params_m=round(params_m, 4), gflops=round(gflops, 4))
        row["top1"] = info.top1 if info else None
        rows.append(row)
    for base in [r for r in rows if r["impl"] in ("authors", "gluoncv")]:
        key = f"speedup_vs_{base['impl']}_{base['model']}"
        for row in rows:
            row[key] = round(row["images_per_s"] / base["images_per_s"], 3)
    return rows


def _print(rows):
    print(f"{'impl':12s}{'model':24s}{'dtype':9s}{'mode':10s}{'size':>5s}{'batch':>6s}"
          f"{'median':>9s}{'p90':>9s}{'p99':>9s}{'img/s':>8s}  speed-up")
    for r in rows:
        ups = " ".join(f"{k[11:]}={v:.2f}x" for k, v in r.items() if k.startswith("speedup_vs_"))
        print(f"{r['impl']:12s}{r['model']:24s}{r['dtype']:9s}{r['mode']:10s}"
              f"{r['input_size']:5d}{r['batch_size']:6d}{r['median_ms']:9.1f}{r['p90_ms']:9.1f}"
              f"{r['p99_ms']:9.1f}{r['images_per_s']:8.1f}  {ups}")


def _chart(rows, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 5))
    for r in rows:
        if r["top1"] is None:
            continue
        ms = r["median_ms"] / r["batch_size"]
        ax.scatter(ms, r["top1"])
        ax.annotate(f"{r['impl']} {r['model']} {r['dtype']} b{r['batch_size']}", (ms, r["top1"]),
                    fontsize=7)
    ax.set_xlabel("latency per image (ms), this CPU")
    ax.set_ylabel("published ImageNet top-1 (%)")
    ax.set_title("ResNeSt: accuracy vs CPU latency")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None):
    threads = own_threads()
    args = parse_args(argv)
    import mxnet as mx
    ctx = mx.gpu(0) if args.num_gpus > 0 else mx.cpu()
    rows = []
    for model in args.models:
        for input_size in args.input_sizes:
            for batch_size in args.batch_sizes:
                group = _rows(args, model, batch_size, input_size, ctx, threads)
                _print(group)
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
        _chart(rows, args.chart)
    return 0


if __name__ == "__main__":
    own_threads()
    from resnest.gluon.errors import run_cli
    run_cli(main, sys.argv[1:])
