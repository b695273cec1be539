"""The detection stage of ``scripts/demo.py``: the composed real-pixel set (digits pasted on
photos, with boxes and instance masks) -> train_detection.py twice at equal steps, from scratch
and from a small classifier's backbone -> held-out COCO mAP of both -> detect.py drawing the
boxes on held-out images.

The small classifier (:func:`small_classifier`, also the segmentation stage's trunk) is a
``resnest_tiny`` trained on the digits: the demo's own checkpoint when its ``--model`` is
``resnest_tiny``, the file given with ``--detection-backbone``, or else one trained here on the
demo's digit records (``train.py``, 24 epochs). The detector is ``faster_rcnn_fpn_resnest_tiny``
(anchors and RoI levels for images of a few hundred pixels).
"""
import os

SMALL = "resnest_tiny"
DETECTOR = f"faster_rcnn_fpn_{SMALL}"


def add_arguments(p):
    """The stage's options on the demo's parser."""
    p.add_argument("--skip-detection", action="store_true", help="leave the detection stage "
                   "out")
    p.add_argument("--detection-only", action="store_true", help="only the data and the "
                   "detection stage (with --detection-backbone)")
    p.add_argument("--detection-backbone", metavar="FILE", help=f"a {SMALL} classifier "
                   "checkpoint to start the segmentation and detection backbones from")
    p.add_argument("--detection-size", type=int, default=128, help="composed image side")
    p.add_argument("--detection-images", type=int, nargs=2, default=(256, 48),
                   metavar=("TRAIN", "VAL"))
    p.add_argument("--detection-epochs", type=int, default=12)
    p.add_argument("--detection-data", help="the composed set's folder (default: "
                   "--data-dir/composed-<size>-<train>-<val>; reused)")


def launcher(ranks, py):
    """``horovodrun -np ranks --gloo py`` for more than one rank, else the interpreter itself
    (the demo's stages and this one start their training commands with it)."""
    if ranks > 1:
        return [os.path.join(os.path.dirname(py), "horovodrun"), "-np", str(ranks), "--gloo", py]
    return [py]


def small_classifier(args, py, out, rec, classifier_params, run):
    """The :data:`SMALL` digits classifier that starts the task models: ``--detection-backbone``,
    the demo's own when its model is :data:`SMALL`, or one trained here into ``backbone/``."""
    if args.detection_backbone:
        return args.detection_backbone
    if args.model == SMALL and classifier_params:
        return classifier_params
    folder = os.path.join(out, "backbone")
    run([*launcher(args.ranks, py), "scripts/gluon/train.py", "--rec-train", rec["train"],
         "--rec-val", rec["val"],
         "--model", SMALL, "--input-size", str(args.input_size), "--crop-ratio",
         "1.0", "--batch-size", "32", "--lr", "0.1", "--num-epochs", "24", "--warmup-epochs",
         "1", "--seed", "0", "--eval-frequency", "8", "--data-nthreads", "1", "--save-dir",
         folder, "--no-progress", "--log-interval", "50"])
    # 24 epochs at 0.1 per rank: 93.3 % held-out top-1 in 1.1 min on 2 ranks (AMX Xeon); one
    # process at 0.1 gave 88.9 %, 8 epochs at 0.05 gave 73 %
    return os.path.join(folder, f"imagenet-{SMALL}-23.params")


def _train(args, py, data, folder, start, run):
    from resnest.gluon.data.composed import coco_paths
    train_json, train_images = coco_paths(data, "train")
    val_json, val_images = coco_paths(data, "val")
    size = args.detection_size
    run([*launcher(args.ranks, py), "scripts/gluon/train_detection.py", "--model", DETECTOR,
         "--train-annotations", train_json, "--train-images", train_images,
         "--val-annotations", val_json, "--val-images", val_images,
         "--train-short", str(size * 3 // 4), str(size), "--max-size", str(size),
         "--val-short", str(size), "--batch-size", "2", "--norm-layer", "bn", "--lr", "0.01",
         "--warmup-iters", "10", "--num-epochs", str(args.detection_epochs),
         "--lr-decay-epoch", str(max(1, args.detection_epochs * 3 // 4)), "--seed", "0",
         "--eval-frequency", str(args.detection_epochs), "-j", "1", "--no-progress",
         "--log-interval", "20", "--save-dir", folder, *start])
    return os.path.join(folder, f"detection-{DETECTOR}-{args.detection_epochs - 1}.params")


def detection_stage(args, py, out, backbone, run):
    """Run the stage, the pretrained run's backbone from the classifier ``backbone``; returns
    its folder (``scratch/``, ``pretrained/``, ``detect.json``,
    ``pictures/``), which :func:`tools.report.detection_lines` reads."""
    folder = os.path.join(out, "detection")
    train_n, val_n = args.detection_images
    data = args.detection_data or os.path.join(
        args.data_dir, f"composed-{args.detection_size}-{train_n}-{val_n}")
    run([py, "scripts/dataset/make_composed.py", data, "--size", str(args.detection_size),
         "--train-images", str(train_n), "--val-images", str(val_n), "--objects", "1", "3",
         "--object-size", str(args.detection_size // 4), str(args.detection_size // 2)])
    _train(args, py, data, os.path.join(folder, "scratch"), [], run)
    tuned = _train(args, py, data, os.path.join(folder, "pretrained"),
                   ["--backbone-params", backbone], run)
    from resnest.gluon.data.composed import coco_paths
    _, val_images = coco_paths(data, "val")
    pictures = sorted(os.listdir(val_images))[:3]
    run([py, "scripts/gluon/detect.py", "--model", DETECTOR, "--resume", tuned,
         "--threshold", "0.3", "--json", os.path.join(folder, "detect.json"), "--draw",
         os.path.join(folder, "pictures"), "-j", "0",
         *[os.path.join(val_images, p) for p in pictures]])
    return folder
