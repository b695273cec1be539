"""Score a detector on a COCO-format folder: COCO mAP by pycocotools, every image once over any
number of Horovod ranks.

    python scripts/gluon/evaluate_detection.py --model faster_rcnn_fpn_resnest50_coco \
        --annotations coco/annotations/instances_val2017.json --images coco/val2017 \
        --json val2017.json                                             # published weights
    horovodrun -np 2 --gloo python scripts/gluon/evaluate_detection.py \
        --model faster_rcnn_fpn_resnest_tiny \
        --resume runs/det/detection-faster_rcnn_fpn_resnest_tiny-9.params \
        --annotations data/composed/annotations/instances_val.json \
        --images data/composed/images/validation

The annotation file is checked first: a box outside its image, an unknown category id or a
missing image stops the run with one sentence, as does a model whose classes are not the
file's categories (by name) or a weights file of another model. Images without annotations
are kept (their detections count as false positives, as COCO's own val2017 does). Mask R-CNN
is scored on boxes and masks. Printed: AP, AP50, AP75 (%); --json adds per-class AP, the
counts, the settings and the CPU.
"""
from resnest.gluon.utils.cli import run_cli
from resnest.gluon.utils.threads import own_threads


def _line(what, figures):
    return (f"{what} AP {figures['AP']:.2f} AP50 {figures['AP50']:.2f} AP75 "
            f"{figures['AP75']:.2f}")


def main(argv=None):
    own_threads()
    from resnest.gluon.inference.verify_detection import (DetectionVerifyConfig,
                                                          verify_detection)
    from resnest.gluon.utils.config import build_parser, parse_config
    from resnest.gluon.utils.distributed import setup_distributed
    from resnest.gluon.utils.io import write_json
    parser = build_parser(DetectionVerifyConfig, __doc__.split("\n")[0])
    parser.add_argument("--json", metavar="FILE", help="write the results here")
    parser.add_argument("--no-cuda", action="store_true", help="evaluate on the CPU even if "
                        "GPUs are present")
    parser.add_argument("--verbose", action="store_true", help="also show MXNet's native log "
                        "lines")
    cfg = parse_config(DetectionVerifyConfig, parser, argv)
    args = parser.parse_args(argv)
    dist = setup_distributed(no_cuda=args.no_cuda)
    summary = verify_detection(cfg, dist, log=lambda m: print(m, flush=True))
    if dist.is_root:
        masks = f"; {_line('mask', summary['segm'])}" if "segm" in summary else ""
        print(f"{cfg.model} on {summary['images']} images ({summary['ranks']} rank(s), "
              f"short side {summary['short']} within {summary['max_size']}): "
              f"{_line('box', summary['bbox'])}{masks}", flush=True)
        if args.json:
            write_json(args.json, summary)
    return 0


if __name__ == "__main__":
    run_cli(main)
