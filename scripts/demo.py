"""The main job, end to end on the embedded real data set (scikit-learn's handwritten digits).

    python scripts/demo.py            # what `make demo` runs

Stages: write the digits as a class-folder tree -> pack train/val RecordIO with im2rec.py ->
train with `horovodrun -np 2 --gloo` (the published recipe's pieces) -> verify.py on the final
checkpoint -> predict.py on a few held-out images -> benchmark.py: measured top-1 and latency per
inference engine and dtype -> segmentation on the composed set (real digits pasted on real
photos): an FCN trained from a small digits classifier's trunk and from scratch at equal
steps, held-out mIoU of both (the runs' last validation), an overlay picture (segment.py) ->
detection: a Faster R-CNN trained on the same kind of set from scratch and from that
classifier's backbone at equal steps, held-out COCO mAP of both (``scripts/demo_detection.py``)
-> a report. The small classifier (``resnest_tiny``, trained once on the digit records when
``--model`` is another) starts both task models: the stage-3 model's 32-pixel trunk is too slow
to train a segmentation or detection model on two cores. The data sets are reused between
runs; each run gets a fresh folder under ``runs/`` and nothing is overwritten.

    python scripts/demo.py --skip-detection              # without stage 8
    python scripts/demo.py --detection-only --detection-backbone CLASSIFIER.params
"""
import argparse
import collections
import datetime
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)                                   # tools/
sys.path.insert(0, HERE)                                   # demo_detection

import demo_detection  # noqa: E402
from resnest.gluon.models.segmentation import backbone_of  # noqa: E402
from tools.check_runner import kill_group  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=os.path.join(REPO, "data", "digits"),
                   help="where the digits tree and its .rec files live (reused)")
    p.add_argument("--images", help="use this class-folder tree (with train/ and val/) "
                                    "instead of writing the digits")
    p.add_argument("--runs-dir", default=os.path.join(REPO, "runs"))
    p.add_argument("--model", default="resnest14")
    p.add_argument("--input-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--batch-size", type=int, default=32, help="per rank")
    p.add_argument("--lr", type=float, default=0.02, help="per rank")
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--benchmark-dtypes", nargs="+", default=["float32", "bfloat16", "int8"])
    p.add_argument("--benchmark-backends", nargs="+",
                   default=["mxnet", "onnxruntime", "openvino"])
    p.add_argument("--skip-benchmark", action="store_true")
    p.add_argument("--seg-model", default=f"fcn_{SMALL}", help="segmentation model; its "
                   f"backbone is {SMALL} or --model")
    p.add_argument("--seg-size", type=int, default=48, help="composed image side")
    p.add_argument("--seg-images", type=int, nargs=2, default=[240, 60],
                   metavar=("TRAIN", "VAL"), help="composed training / held-out images")
    p.add_argument("--seg-epochs", type=int, default=60)
    p.add_argument("--seg-batch-size", type=int, default=4, help="per rank")
    p.add_argument("--seg-lr", type=float, default=0.005, help="per rank")
    p.add_argument("--seg-ranks", type=int, default=2)
    p.add_argument("--skip-segmentation", action="store_true")
    demo_detection.add_arguments(p)
    args = p.parse_args(argv)
    if args.detection_only and not args.detection_backbone:
        p.error("--detection-only needs --detection-backbone (the classifier stages are skipped)")
    args.detection = not args.skip_detection or args.detection_only
    return args


SMALL = demo_detection.SMALL
STAGES = 9
_RANK_LINE = re.compile(r"^\[(\d+)\]<(?:stdout|stderr)>:(.*)$")


def stage(number, title):
    print(f"\n=== [{number}/{STAGES}] {title} ===", flush=True)


def _detection_only(args, py, t0):
    """``--detection-only``: the detection stage and its report."""
    global STAGES
    STAGES = 2
    out = new_run_dir(args.runs_dir)
    print(f"\nrun folder: {out}")
    stage(1, "detection: fine-tune a Faster R-CNN on the composed real-pixel set")
    folder = demo_detection.detection_stage(args, py, out, args.detection_backbone,
                                            run)
    stage(2, "report")
    from tools.report import detection_lines
    text = "\n".join(detection_lines(folder) +
                     [f"time: whole demo {(time.time() - t0) / 60:.1f} min"])
    print(text)
    with open(os.path.join(out, "report.txt"), "w") as f:
        f.write(text + "\n")
    return 0


def run(cmd):
    """Run one stage's command, showing its output as it comes; stop the demo if it fails.

    Under ``horovodrun`` every line comes prefixed with its rank: rank 0's lines are shown
    without the prefix, the other ranks' are kept and shown only if the stage fails. Each
    script sets its own thread count (``resnest.gluon.utils.threads``) and keeps MXNet's
    native log lines off the console (``resnest.gluon.utils.cli``).
    """
    print("$ " + " ".join(cmd), flush=True)
    start = time.time()
    others = collections.deque(maxlen=30)
    # its own process group, ended with the demo however the demo ends (Ctrl-C, SIGTERM, a
    # test's timeout): a stage never outlives it
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1, start_new_session=True)
    try:
        for line in proc.stdout:
            m = _RANK_LINE.match(line.rstrip("\n"))
            if m and m.group(1) != "0":
                others.append(line)
                continue
            print(m.group(2) if m else line.rstrip("\n"), flush=True)
        code = proc.wait()
    finally:
        kill_group(proc, grace=5.0 if proc.poll() is None else 0.5)
    if code != 0:
        sys.stdout.writelines(others)
        from resnest.gluon.utils.errors import UserError
        raise UserError(f"stage command failed with exit code {code}: {' '.join(cmd)}")
    return time.time() - start


def new_run_dir(runs_dir):
    """A fresh folder ``runs/demo-YYYYmmdd-HHMMSS[-n]``; never an existing one."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    os.makedirs(runs_dir, exist_ok=True)
    for n in range(100):
        path = os.path.join(runs_dir, f"demo-{stamp}" + (f"-{n}" if n else ""))
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"could not create a new run folder in {runs_dir}")


def prepare_data(args, py):
    """Stages 1-2: the digits tree and its RecordIO, both reused when already complete."""
    images = args.images or os.path.join(args.data_dir, "images")
    stage(1, "data set: scikit-learn handwritten digits as JPEG class folders")
    if args.images:
        print(f"using {images}")
    else:
        run([py, "scripts/dataset/make_digits.py", images, "--size", str(args.input_size)])
    stage(2, "pack RecordIO with im2rec.py")
    rec = {}
    for split in ("train", "val"):
        prefix = os.path.join(args.data_dir, "rec", split)
        rec[split] = prefix + ".rec"
        if os.path.isfile(rec[split]) and os.path.isfile(prefix + ".idx") and not args.images:
            print(f"reusing {rec[split]} (outputs are renamed into place only when complete)")
            continue
        os.makedirs(os.path.dirname(prefix), exist_ok=True)
        extra = ["--shuffle", "--seed", "0"] if split == "train" else []
        # --force: a half-present pair, or --images, is rebuilt on purpose
        run([py, "scripts/dataset/im2rec.py", os.path.join(images, split), prefix,
             "--no-progress", "--force"] + extra)
    return rec


def held_out_examples(args, count=6):
    """A few validation image files, from different classes (never seen in training)."""
    images = os.path.join(args.images or os.path.join(args.data_dir, "images"), "val")
    classes = sorted(os.listdir(images))
    picks = []
    for i in range(count):
        folder = os.path.join(images, classes[(i * 3) % len(classes)])
        files = sorted(os.listdir(folder))
        picks.append(os.path.join(folder, files[i % len(files)]))
    return picks


def segmentation_stage(args, py, out, classifier_params):
    """Stage 7: the composed set (reused), the segmentation model trained twice with the same
    steps (its backbone from ``classifier_params``, a classifier of the model's backbone, and
    from scratch), each scored on every held-out image at the end, and segment.py's overlay
    of a few of them. Returns the files the report reads."""
    model = args.seg_model
    size, (train_images, val_images) = args.seg_size, args.seg_images
    data = os.path.join(args.data_dir, f"composed-{size}-{train_images}-{val_images}")
    if not os.path.isfile(os.path.join(data, "classes.txt")):   # written last: complete
        # one or two digits of about the classifier's own 32 pixels (more, smaller ones
        # left both starts at the all-background answer for hundreds of steps)
        run([py, "scripts/dataset/make_composed.py", data, "--size", str(size),
             "--train-images", str(train_images), "--val-images", str(val_images),
             "--objects", "1", "2", "--object-size", str(max(8, size * 11 // 20)),
             str(max(12, size * 5 // 6))])
    seg = {"model": model, "data": data, "runs": {}}
    for start, extra in (("classifier trunk", ["--pretrained-params", classifier_params]),
                         ("scratch", [])):
        folder = os.path.join(out, "segmentation", start.split()[0])
        run(demo_detection.launcher(args.seg_ranks, py) + [
            "scripts/gluon/train_segmentation.py", "--data-dir", data, "--model", model,
            "--base-size", str(size), "--crop-size", str(size), "--batch-size",
            str(args.seg_batch_size), "--lr", str(args.seg_lr), "--num-epochs",
            str(args.seg_epochs), "--eval-frequency", str(args.seg_epochs), "--seed", "0",
            "--data-nthreads", "1", "--save-dir", folder, "--no-progress", "--log-interval",
            "20", *extra])
        # The composed images are their own crop, so the last epoch's validation is what
        # evaluate_segmentation.py measures on the final checkpoint (one process less).
        seg["runs"][start] = {"train_dir": folder, "params": os.path.join(
            folder, f"segmentation-{model}-{args.seg_epochs - 1}.params")}
    held_out = sorted(os.listdir(os.path.join(data, "images", "validation")))[:3]
    seg["segment"] = os.path.join(out, "segmentation", "segment")
    run([py, "scripts/gluon/segment.py", "--model", model, "--resume",
         seg["runs"]["classifier trunk"]["params"], "--backend", "mxnet", "--out",
         seg["segment"]] + [os.path.join(data, "images", "validation", n) for n in held_out])
    return seg


def main(argv=None):
    args = parse_args(argv)
    py = sys.executable
    bindir = os.path.dirname(py)
    t0 = time.time()
    if args.detection_only:
        return _detection_only(args, py, t0)
    rec = prepare_data(args, py)
    out = new_run_dir(args.runs_dir)
    print(f"\nrun folder: {out}")

    stage(3, f"train {args.model} with horovodrun -np {args.ranks} --gloo (CPU)")
    train_dir = os.path.join(out, "train")
    train_s = run([os.path.join(bindir, "horovodrun"), "-np", str(args.ranks), "--gloo", py,
                   "scripts/gluon/train.py", "--rec-train", rec["train"], "--rec-val", rec["val"],
                   "--model", args.model, "--input-size", str(args.input_size),
                   "--crop-ratio", "1.0", "--min-random-area", "0.5", "--no-mirror",
                   "--batch-size", str(args.batch_size), "--lr", str(args.lr),
                   "--num-epochs", str(args.epochs), "--warmup-epochs", "1",
                   "--last-gamma", "--no-wd", "--label-smoothing", "--mixup",
                   "--mixup-off-epoch", str(max(1, args.epochs // 4)), "--seed", "0",
                   "--eval-frequency", str(max(1, args.epochs // 4)), "--data-nthreads", "1",
                   "--save-dir", train_dir, "--no-progress", "--log-interval", "20"])
    params = os.path.join(train_dir, f"imagenet-{args.model}-{args.epochs - 1}.params")

    stage(4, "verify the final checkpoint on the held-out digits")
    verify_json = os.path.join(out, "verify.json")
    run([py, "scripts/gluon/verify.py", "--model", args.model, "--resume", params,
         "--rec-val", rec["val"], "--batch-size", "50", "--json", verify_json, "--no-progress"])

    stage(5, "predict: name the digits in a few held-out images")
    predict_json = os.path.join(out, "predict.json")
    run([py, "scripts/gluon/predict.py", "--model", args.model, "--resume", params,
         "--topk", "3", "--json", predict_json] + held_out_examples(args))

    bench_json = os.path.join(out, "benchmark.json")
    if not args.skip_benchmark:
        stage(6, "accuracy and latency of the checkpoint per inference engine and dtype")
        run([py, "scripts/gluon/benchmark.py", "--models", args.model, "--resume", params,
             "--rec-val", rec["val"], "--input-sizes", str(args.input_size), "--crop-ratio",
             "1.0", "--batch-sizes", "1", "16", "--backends"] + args.benchmark_backends +
            ["--dtypes"] + args.benchmark_dtypes +
            ["--json", bench_json, "--chart", os.path.join(out, "accuracy_latency.png")])
    seg = detection = small = None
    if args.skip_segmentation:
        stage(7, "segmentation: skipped (--skip-segmentation)")
    else:
        stage(7, "segmentation on the composed set: classifier trunk vs scratch, equal steps")
        trunk = params
        if backbone_of(args.seg_model) != args.model:
            small = trunk = demo_detection.small_classifier(args, py, out, rec, params,
                                                            run)
        seg = segmentation_stage(args, py, out, trunk)
    if not args.detection:
        stage(8, "detection: skipped (--skip-detection)")
    else:
        stage(8, "detection: fine-tune a Faster R-CNN on the composed real-pixel set")
        small = small or demo_detection.small_classifier(args, py, out, rec, params,
                                                         run)
        detection = demo_detection.detection_stage(args, py, out, small, run)
    stage(STAGES, "report")
    from tools.report import demo_report
    text = demo_report(out, train_dir, verify_json, bench_json if not args.skip_benchmark
                       else None, total_s=time.time() - t0, train_s=train_s,
                       predict_json=predict_json, segmentation=seg,
                       detection_dir=detection)
    print(text)
    with open(os.path.join(out, "report.txt"), "w") as f:
        f.write(text + "\n")
    return 0


if __name__ == "__main__":
    from resnest.gluon.utils.cli import run_cli
    run_cli(main)
