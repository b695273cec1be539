"""Detect objects in your own images with a Faster / Mask R-CNN and name them.

    python scripts/gluon/detect.py --model faster_rcnn_fpn_resnest50_coco photos/ street.jpg
    python scripts/gluon/detect.py --model faster_rcnn_fpn_resnest_tiny \
        --resume runs/det/detection-faster_rcnn_fpn_resnest_tiny-9.params \
        --threshold 0.3 --json boxes.json --csv boxes.csv --draw pictures/ 'shots/**/*.png'

Inputs: image files, folders (searched recursively), glob patterns (quote them) and .rec
files, any number (predict.py's rules). Names: COCO's 80 classes for the published weights,
the training data's class names for a checkpoint (its record). The input is resized as the
weights are evaluated (a checkpoint's: the size it was validated at in training). ``--draw``
writes ``<image>.boxes.jpg`` with boxes, names and scores (and masks for Mask R-CNN). Exit code
0 when every image was searched, 1 when some could not be read (each named on stderr), 2 on
an error that stops the run.
"""
import sys

from resnest.gluon.utils.cli import run_cli
from resnest.gluon.utils.threads import own_threads


def main(argv=None):
    own_threads()
    from resnest.gluon.inference.det_outputs import run_detect
    from resnest.gluon.inference.detect import DetectConfig
    from resnest.gluon.utils.config import build_parser, parse_config
    parser = build_parser(DetectConfig, __doc__.split("\n")[0])
    parser.add_argument("--json", metavar="FILE", help="write one row per image as JSON "
                        "('-': stdout)")
    parser.add_argument("--csv", metavar="FILE", help="write one row per detection as CSV "
                        "('-': stdout)")
    parser.add_argument("--draw", metavar="DIR", help="write a picture of each image with its "
                        "detections drawn into this folder")
    parser.add_argument("--force", action="store_true", help="replace pictures an earlier run "
                        "left in --draw")
    parser.add_argument("--verbose", action="store_true", help="also show MXNet's native log "
                        "lines")
    cfg = parse_config(DetectConfig, parser, argv)
    args = parser.parse_args(argv)
    _, failed = run_detect(cfg, args.json, args.csv, args.draw, args.force, out=sys.stdout,
                           err=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    run_cli(main)
