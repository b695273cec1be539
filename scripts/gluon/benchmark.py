"""Inference latency and throughput of ResNeSt models per backend, side by side with the
authors' model.

    python scripts/gluon/benchmark.py --models resnest50 --batch-sizes 16 1 \
        --backends mxnet onnxruntime openvino --dtypes float32 int8 bfloat16 --json bench.json

    python scripts/gluon/benchmark.py --models deeplab_resnest50_ade --input-sizes 480 \
        --batch-sizes 1 --baseline gluoncv --backends mxnet onnxruntime   # segmentation

Per model x batch size x input size, the authors' published Gluon model (plain hybridized
float32: the 1.00x reference) and ours per backend and dtype (``optimize(net, dtype,
backend=...)``; a combination that cannot run here is skipped with the reason) are timed
model-only on one batch, in interleaved rounds (random order each round) in this one process,
after warm-up, each call synchronised. Reports median / p90 / p99 ms per batch (50 rounds at
batch 1 by default), img/s, the speed-up over each baseline (ratio of medians and the median of
per-round ratios), the CPU model and ISA flags, and the CPU that other processes used while
timing (runs where they used more than 0.1 core are flagged noisy). ``--chart`` plots measured
accuracy (verify.py ``--json`` results given with ``--accuracy``) against latency.

With a trained checkpoint and its validation data it measures both itself, per backend and dtype
(what ``make demo`` shows for its digits model; no baseline)::

    python scripts/gluon/benchmark.py --models resnest14 \
        --resume train/imagenet-resnest14-11.params \
        --rec-val data/digits/rec/val.rec --input-sizes 32 --crop-ratio 1.0 \
        --backends mxnet onnxruntime openvino --dtypes float32 bfloat16 int8 --chart acc.png
"""
import argparse
import csv
import io
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from resnest.gluon.utils.cli import run_cli  # noqa: E402
from resnest.gluon.utils.io import write_json, write_text  # noqa: E402
from resnest.gluon.utils.errors import UserError  # noqa: E402
from resnest.gluon.utils.threads import own_threads  # noqa: E402
from resnest.gluon.pretrained import DEFAULT_CROP_RATIO, DEFAULT_CROP_SIZE  # noqa: E402


def parse_args(argv):
    from resnest.gluon.inference.backends import BACKENDS, DTYPES   # after own_threads()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["resnest50"])
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 16])
    p.add_argument("--input-sizes", nargs="+", type=int, default=[DEFAULT_CROP_SIZE])
    p.add_argument("--backends", nargs="+", default=["mxnet"], choices=tuple(BACKENDS),
                   help="engines for our model (onnxruntime, openvino: pip install "
                        "resnest[deploy])")
    p.add_argument("--dtypes", nargs="+", default=["float32"], choices=DTYPES)
    p.add_argument("--plain", action="store_true", help="also time our bare hybridized model")
    p.add_argument("--baseline", nargs="*", default=["authors"], choices=("authors", "gluoncv"),
                   help="implementations timed plain fp32 beside ours (default: authors)")
    p.add_argument("--rounds", type=int,
                   help="interleaved rounds (default 50 at batch <= 2, else 10)")
    p.add_argument("--runs", type=int, default=1, help="timed calls per candidate per round")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--gap", type=float, default=0.1,
                   help="seconds of idle before each candidate's turn, so the previous engine's "
                        "spin-waiting threads are quiet (0: none)")
    p.add_argument("--classes", type=int, help="default: 1000 for a classifier, the "
                   "published count for a segmentation model (deeplab_resnest50_ade: 150)")
    p.add_argument("--num-gpus", type=int, default=0)
    p.add_argument("--shared-cpu", action="store_true",
                   help="other processes use these cores: no spin-waiting (GOMP_SPINCOUNT=0, "
                        "onnxruntime allow_spinning=0)")
    p.add_argument("--json", metavar="FILE")
    p.add_argument("--csv", metavar="FILE")
    p.add_argument("--chart", metavar="PNG", help="measured top-1 against latency per image")
    p.add_argument("--accuracy", nargs="+", default=[], metavar="JSON",
                   help="verify.py --json results: the measured top-1 of each backend/dtype")
    p.add_argument("--resume", metavar="PARAMS",
                   help="a trained checkpoint of the one model: also measure its top-1 on "
                        "--rec-val per backend and dtype (verify.py's evaluator)")
    p.add_argument("--rec-val", metavar="REC", help="labelled data for --resume (.rec or folders)")
    p.add_argument("--crop-ratio", type=float, default=DEFAULT_CROP_RATIO, help="with --resume")
    p.add_argument("--verbose", action="store_true", help="also show MXNet's native log lines")
    args = p.parse_args(argv)
    _check(args)
    return args


def _check(args):
    """One sentence for numbers that cannot be benchmarked."""
    for flag, values, low in (("--batch-sizes", args.batch_sizes, 1),
                              ("--input-sizes", args.input_sizes, 32),
                              ("--classes", [args.classes] if args.classes else [], 1),
                              ("--runs", [args.runs], 1), ("--warmup", [args.warmup], 0),
                              ("--rounds", [args.rounds] if args.rounds is not None else [], 1),
                              ("--num-gpus", [args.num_gpus], 0)):
        bad = [v for v in values if v < low]
        if bad:
            raise UserError(f"{flag} must be at least {low}, got {bad[0]}"
                            + (" (the models downsample by 32)" if low == 32 else "") + ".")
    if not 0 <= args.gap < 60:
        raise UserError(f"--gap must be in [0, 60) seconds, got {args.gap}.")
    if not 0 < args.crop_ratio <= 1:
        raise UserError(f"--crop-ratio must be in (0, 1], got {args.crop_ratio}.")


def _write(args, rows):
    if args.json:
        write_json(args.json, rows)
    if args.csv:
        keys = sorted({k for r in rows for k in r if k != "isa"})
        table = io.StringIO()
        writer = csv.DictWriter(table, fieldnames=keys, extrasaction="ignore",
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text(args.csv, table.getvalue())


def _checkpoint(args):
    """Measured top-1 and latency of one trained checkpoint per backend and dtype."""
    if len(args.models) != 1 or len(args.input_sizes) != 1 or not args.rec_val:
        raise UserError("--resume measures one checkpoint: give one --models, one --input-sizes "
                        "(its evaluation crop) and its labelled data with --rec-val.")
    from tools.accuracy_latency import accuracy_latency, format_rows
    rows, skipped = accuracy_latency(args.models[0], args.resume, args.rec_val, args.backends,
                                     args.dtypes, args.input_sizes[0], args.crop_ratio,
                                     args.batch_sizes, args.rounds or 50, chart=args.chart)
    print("\n".join(format_rows(rows)))
    for label, reason in skipped:
        print(f"  skipped {label}: {reason}")
    if rows:
        print(f"CPU: {rows[0]['cpu']}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    _write(args, rows)
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    threads = own_threads(shared="--shared-cpu" in argv or None)    # before MXNet starts
    args = parse_args(argv)
    if args.resume:
        return _checkpoint(args)
    if args.chart and not args.accuracy:
        raise UserError("--chart plots measured accuracy against latency; pass the verify.py "
                        "--json results of the same backends and dtypes with --accuracy.")
    import mxnet as mx
    from tools.inference_bench import accuracy_table, benchmark_rows, draw_chart, print_rows
    ctx = mx.gpu(0) if args.num_gpus > 0 else mx.cpu()
    rows = []
    for model in args.models:
        for input_size in args.input_sizes:
            for batch_size in args.batch_sizes:
                group = benchmark_rows(args, model, batch_size, input_size, ctx, threads)
                print_rows(group)
                rows += group
    print(f"OMP_NUM_THREADS={threads}")
    _write(args, rows)
    if args.chart:
        draw_chart(rows, args.chart, accuracy_table(args.accuracy))
    return 0


if __name__ == "__main__":
    run_cli(main)
