"""Verify a model's accuracy on a validation set, with its published evaluation preprocessing.

    python scripts/gluon/verify.py --model resnest50 --rec-dir /data/imagenet/rec  # published
    python scripts/gluon/verify.py --model resnest50 --resume params/imagenet-resnest50-269.params \
        --rec-val /data/imagenet/rec/val.rec --dtype int8 --json result.json
    python scripts/gluon/verify.py --model resnest50 --rec-dir /data/imagenet/rec \
        --backend openvino --dtype int8        # pip install resnest[deploy]
    horovodrun -np 2 --gloo python scripts/gluon/verify.py --model resnest50 --data-dir val/

Crop size and crop ratio default to the model's published evaluation settings (the authors'
verify.py: resize + centre crop up to 320, "ECenterCrop" above). Every image is counted once
whatever the batch size, the number of GPUs (each batch is split over them) or ranks.
"""
import argparse
import os

from resnest.gluon.utils.cli import run_cli
from resnest.gluon.utils.threads import own_threads


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="registered model name, e.g. resnest50")
    p.add_argument("--resume", "--params-file", dest="resume", metavar="FILE",
                   help="weights to check (default: the published ones)")
    p.add_argument("--crop-size", type=int, help="default: the model's published eval crop")
    p.add_argument("--crop-ratio", type=float, help="crop / resized short side (crops <= 320)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--rec-val", metavar="FILE", help="validation .rec (.idx beside it)")
    src.add_argument("--rec-dir", metavar="DIR", help="folder holding val.rec and val.idx")
    src.add_argument("--data-dir", metavar="DIR", help="class-folder tree of images")
    p.add_argument("--batch-size", type=int, default=32, help="per device")
    p.add_argument("--num-gpus", type=int, default=0,
                   help="0 = CPU; N splits each batch over GPUs 0..N-1 (one per rank under "
                        "horovodrun)")
    p.add_argument("--dtype", default="float32",
                   choices=("float32", "float16", "bfloat16", "int8"))
    p.add_argument("--backend", default="mxnet", choices=("mxnet", "onnxruntime", "openvino"),
                   help="inference engine (onnxruntime, openvino: pip install resnest[deploy])")
    p.add_argument("--calib-batches", type=int, default=4,
                   help="int8: batches of the data, spread over it, for calibration")
    p.add_argument("--calib-mode", choices=("entropy", "naive"),
                   help="int8 calibration: KL-divergence thresholds or min/max (default: "
                        "entropy for mxnet, min/max for onnxruntime and openvino)")
    p.add_argument("-j", "--num-workers", "--num-data-workers", dest="num_workers", type=int,
                   default=4, help="decoding processes")
    p.add_argument("--json", metavar="FILE", help="write the results here")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--verbose", action="store_true", help="also show MXNet's native log lines")
    return p.parse_args(argv)


def main(argv=None):
    own_threads()                                     # RESNEST_SHARED_CPU=1: no spin-waiting
    args = parse_args(argv)
    from resnest.gluon.inference.verify import VerifyConfig, verify
    from resnest.gluon.utils.distributed import setup_distributed
    from resnest.gluon.utils.io import write_json
    data = args.rec_val or args.data_dir or os.path.join(args.rec_dir, "val.rec")
    cfg = VerifyConfig(args.model, data, args.resume, args.crop_size, args.crop_ratio,
                       args.batch_size, args.dtype, args.num_gpus, args.num_workers,
                       args.calib_batches, args.calib_mode, not args.no_progress,
                       args.backend)
    dist = setup_distributed(num_gpus=args.num_gpus)
    summary = verify(cfg, dist)
    if dist.is_root:
        print(f"{args.model} {args.backend} {args.dtype} crop {summary['crop_size']} "
              f"({summary['preprocessing']}): top-1 {summary['top1']:.2f}% "
              f"top-5 {summary['top5']:.2f}% on {summary['images']} images; "
              f"model {summary['model_images_per_s']:.1f} img/s, "
              f"end-to-end {summary['end_to_end_images_per_s']:.1f} img/s", flush=True)
        if args.json:
            write_json(args.json, summary)
    return 0


if __name__ == "__main__":
    run_cli(main)
