"""Segment your own images: a class-index PNG and an overlay picture per image, and a JSON of
the classes each image shows with their pixel share.

    python scripts/gluon/segment.py --model deeplab_resnest50_ade --out seg/ photos/ 'shots/*.jpg'
    python scripts/gluon/segment.py --model fcn_resnest14 \
        --resume runs/seg/segmentation-fcn_resnest14-3.params --out seg/ \
        data/composed/images/validation
    python scripts/gluon/segment.py --model deeplab_resnest50_ade --multi-scale --out seg/ a.jpg
    python scripts/gluon/segment.py --model deeplab_resnest50_ade --backend openvino --dtype int8 \
        --out seg/ photos/                       # pip install resnest[deploy]

Inputs: image files, folders (searched recursively), glob patterns and .rec files, as for
predict.py. Names: ADE20K's 150 classes for the published models, the training data's for a
checkpoint. <name>.png holds class c as the value c + 1 (0 = unlabelled, as in the ADE20K
masks; a palette shows the classes). An --out folder holding an earlier run's results is
refused unless --force. Exit code 0 when every image was segmented, 1 when some could not be
read (each named on stderr), 2 on an error that stops the run.
"""
import sys

from resnest.gluon.utils.cli import run_cli
from resnest.gluon.utils.threads import own_threads


def main(argv=None):
    own_threads()
    from resnest.gluon.inference.segment import SegmentConfig, run_segment
    from resnest.gluon.utils.config import build_parser, parse_config
    parser = build_parser(SegmentConfig, __doc__.split("\n")[0])
    parser.add_argument("--verbose", action="store_true", help="also show MXNet's native log "
                        "lines")
    cfg = parse_config(SegmentConfig, parser, argv)
    _, failed = run_segment(cfg, out=sys.stdout, err=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    run_cli(main)
