"""Check a model's accuracy on a validation set: top-1, top-5, images counted, throughput.

    python scripts/gluon/verify.py --model resnest50 --rec-val val.rec
    python scripts/gluon/verify.py --model resnest50 --resume params/imagenet-resnest50-269.params \
        --rec-dir /data/imagenet --dtype int8 --json result.json
    horovodrun -np 2 --gloo python scripts/gluon/verify.py --model resnest50 --rec-val val.rec

Crop size, crop ratio and interpolation default to the model's published evaluation
preprocessing. Every image is counted once whatever the batch size or the number of ranks.
"""
import argparse
import json
import os
import sys

from resnest.gluon.threads import own_threads

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="registered model name, e.g. resnest50")
    p.add_argument("--resume", metavar="FILE", help="weights to check (default: published)")
    p.add_argument("--crop-size", type=int, help="default: the model's published eval crop")
    p.add_argument("--crop-ratio", type=float, help="crop / resized short side")
    p.add_argument("--interpolation", choices=("bilinear", "bicubic"))
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--rec-val", metavar="FILE", help="validation .rec (.idx beside it)")
    src.add_argument("--rec-dir", metavar="DIR", help="folder holding val.rec and val.idx")
    src.add_argument("--data-dir", metavar="DIR", help="class-folder tree of images")
    p.add_argument("--batch-size", type=int, default=32, help="per rank")
    p.add_argument("--num-gpus", type=int, default=0, help="0 = CPU")
    p.add_argument("--dtype", default="float32",
                   choices=("float32", "float16", "bfloat16", "int8"))
    p.add_argument("--calib-batches", type=int, default=4,
                   help="int8: batches of the data, spread over it, for entropy calibration")
    p.add_argument("--calib-mode", default="entropy", choices=("entropy", "naive"),
                   help="int8 calibration: KL-divergence thresholds (slow, accurate) or min/max")
    p.add_argument("-j", "--num-workers", type=int, default=4, help="decoding processes")
    p.add_argument("--json", metavar="FILE", help="write the results here")
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def _distributed():
    """``(rank, size, hvd or None)``: Horovod only when launched by horovodrun."""
    if "HOROVOD_RANK" not in os.environ and "OMPI_COMM_WORLD_RANK" not in os.environ:
        return 0, 1, None
    import horovod.mxnet as hvd
    hvd.init()
    return hvd.rank(), hvd.size(), hvd


def _settings(args):
    from resnest.gluon import PRETRAINED, UserError
    info = PRETRAINED.get(args.model)
    crop = args.crop_size or (info.crop_size if info else 224)
    ratio = args.crop_ratio or (info.crop_ratio if info else 0.875)
    interp = args.interpolation or (info.interpolation if info else "bilinear")
    if crop < 32:
        raise UserError(f"crop size {crop} is too small for {args.model}: it downsamples by 32, "
                        f"so use --crop-size 32 or more.")
    if not 0 < ratio <= 1:
        raise UserError(f"--crop-ratio must be in (0, 1], got {ratio}.")
    return crop, ratio, interp, info


def _build_net(args, ctx):
    from resnest.gluon import UserError, get_model
    from resnest.gluon.store import get_model_file, load_weights, read_params
    if args.resume:
        weights = read_params(args.resume)
        fc = [k for k in weights if k.endswith("fc.weight")]
        if not fc:
            raise UserError(f"weights file {args.resume} has no fc.weight; it is not a "
                            f"classification model's weights.")
        classes = weights[fc[0]].shape[0]
        path = args.resume
    else:
        classes, path = 1000, get_model_file(args.model)
    net = get_model(args.model, classes=classes)
    load_weights(net, path, ctx=ctx, name=args.model)
    return net, classes


def _loader(args, crop, ratio, interp, info, rank, size):
    from resnest.gluon.data import eval_transform, rec_info, val_loader
    from resnest.gluon.evaluate import FolderLoader
    from resnest.gluon.pretrained import IMAGENET_MEAN, IMAGENET_STD
    mean, std = (info.mean, info.std) if info else (IMAGENET_MEAN, IMAGENET_STD)
    if args.data_dir:
        from resnest.gluon import UserError
        if not os.path.isdir(args.data_dir):
            raise UserError(f"--data-dir {args.data_dir} is not a folder.")
        transform = eval_transform(crop, ratio, interp, mean, std)
        loader = FolderLoader(args.data_dir, args.batch_size, transform, rank, size,
                              args.num_workers)
        return loader, loader.classes
    rec = args.rec_val or os.path.join(args.rec_dir, "val.rec")
    classes = rec_info(rec).classes
    loader = val_loader(rec, args.batch_size, crop_size=crop, crop_ratio=ratio,
                        interpolation=interp, mean=mean, std=std, rank=rank, num_ranks=size,
                        num_workers=args.num_workers)
    return loader, classes


def _calibration_batches(loader, count):
    """``count`` batches spread evenly over the data (record files are often in class order),
    skipping the batches in between without decoding them."""
    step = max(1, len(loader) // max(1, count))
    batches = []
    for start in range(0, min(len(loader), step * count), step):
        loader.set_epoch(0, start_batch=start)
        batches.append(next(iter(loader)))
    loader.set_epoch(0, start_batch=0)
    return batches


def main(argv=None):
    threads = own_threads()
    args = parse_args(argv)
    import mxnet as mx
    from resnest.gluon import UserError
    from resnest.gluon.evaluate import evaluate
    from resnest.gluon.inference import optimize

    rank, size, hvd = _distributed()
    crop, ratio, interp, info = _settings(args)
    ctx = mx.gpu(hvd.local_rank() if hvd else 0) if args.num_gpus > 0 else mx.cpu()
    loader, data_classes = _loader(args, crop, ratio, interp, info, rank, size)
    net, classes = _build_net(args, ctx)
    if data_classes > classes:
        raise UserError(f"the data has {data_classes} classes but the model predicts "
                        f"{classes}; pass the weights trained on this data with --resume.")
    calib = _calibration_batches(loader, args.calib_batches) if args.dtype == "int8" else None
    net = optimize(net, args.dtype, ctx=ctx, calib_data=calib, input_size=crop,
                   batch_size=args.batch_size, calib_mode=args.calib_mode)

    progress = None
    if rank == 0 and not args.no_progress:
        from tqdm import tqdm
        bar = tqdm(total=len(loader), unit="batch", desc=f"verify {args.model}")
        progress = lambda done, images: bar.update(1)          # noqa: E731
    result = evaluate(net, loader, ctx, progress)
    if progress is not None:
        bar.close()

    if hvd is not None:
        counts = mx.nd.array([result.correct1, result.correct5, result.total,
                              result.total / max(result.model_seconds, 1e-9),
                              result.total / max(result.total_seconds, 1e-9)], dtype="float64")
        counts = hvd.allreduce(counts, op=hvd.Sum, name="verify_counts").asnumpy()
        result.correct1, result.correct5, result.total = (int(round(v)) for v in counts[:3])
        model_ips, e2e_ips = float(counts[3]), float(counts[4])
    else:
        summary = result.as_dict()
        model_ips, e2e_ips = summary["model_images_per_s"], summary["end_to_end_images_per_s"]
    summary = result.as_dict()
    summary.update(model=args.model, crop_size=crop, crop_ratio=round(ratio, 6),
                   interpolation=interp, dtype=args.dtype, batch_size=args.batch_size,
                   ranks=size, threads_per_rank=threads,
                   model_images_per_s=round(model_ips, 2),
                   end_to_end_images_per_s=round(e2e_ips, 2))
    if rank == 0:
        print(f"{args.model} {args.dtype} crop {crop}: top-1 {summary['top1']:.2f}% "
              f"top-5 {summary['top5']:.2f}% on {summary['images']} images; "
              f"model {summary['model_images_per_s']:.1f} img/s, "
              f"end-to-end {summary['end_to_end_images_per_s']:.1f} img/s")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(summary, f, indent=2)
    return 0


if __name__ == "__main__":
    own_threads()
    from resnest.gluon.errors import run_cli
    run_cli(main, sys.argv[1:])
