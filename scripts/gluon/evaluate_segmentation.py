"""Score a segmentation model on image / mask pairs: exact pixel accuracy and mIoU (label 0
ignored, as GluonCV counts them), every image once over any number of Horovod ranks.

    python scripts/gluon/evaluate_segmentation.py --model deeplab_resnest50_ade \
        --data-dir ADEChallengeData2016 --json ade_val.json            # published weights
    horovodrun -np 2 --gloo python scripts/gluon/evaluate_segmentation.py --model fcn_resnest14 \
        --resume runs/seg/segmentation-fcn_resnest14-3.params --data-dir data/composed
    python scripts/gluon/evaluate_segmentation.py --model deeplab_resnest50_ade \
        --data-dir ADEChallengeData2016 --multi-scale       # the protocol of the published mIoU

Data: the ADE20K layout (``--split val`` by default) or a folder of images/ + masks/. A mask
of another size than its image, a label beyond the classes or an image without a mask stops
the run with one sentence (never a silently wrong mIoU). mIoU is GluonCV's mean over every
class (a class absent from masks and predictions counts 0; the JSON also gives the mean over
the classes present and the per-class IoU).
"""
from resnest.gluon.utils.cli import run_cli
from resnest.gluon.utils.threads import own_threads


def main(argv=None):
    own_threads()
    from resnest.gluon.inference.verify_segmentation import (SegmentationVerifyConfig,
                                                             verify_segmentation)
    from resnest.gluon.utils.config import build_parser, parse_config
    from resnest.gluon.utils.distributed import setup_distributed
    from resnest.gluon.utils.io import write_json
    parser = build_parser(SegmentationVerifyConfig, __doc__.split("\n")[0])
    parser.add_argument("--json", metavar="FILE", help="write the results here")
    parser.add_argument("--no-cuda", action="store_true", help="evaluate on the CPU even if "
                        "GPUs are present")
    parser.add_argument("--verbose", action="store_true", help="also show MXNet's native log "
                        "lines")
    cfg = parse_config(SegmentationVerifyConfig, parser, argv)
    args = parser.parse_args(argv)
    dist = setup_distributed(no_cuda=args.no_cuda)
    summary = verify_segmentation(cfg, dist)
    if dist.is_root:
        print(f"engine: {summary['backend']} ({summary['engine']})", flush=True)
        absent = len(summary["absent_classes"])
        print(f"{cfg.model} {summary['backend']} {cfg.dtype} {summary['protocol']}: pixAcc "
              f"{summary['pixAcc']:.2f}% mIoU {summary['mIoU']:.2f}% on {summary['images']} "
              f"images" + (f" ({absent} of {summary['classes']} classes in neither masks nor "
                           f"predictions; mIoU over the others {summary['mIoU_present']:.2f}%)"
                           if absent else "") +
              f"; model {summary['model_images_per_s']:.1f} img/s, end-to-end "
              f"{summary['end_to_end_images_per_s']:.1f} img/s", flush=True)
        if args.json:
            write_json(args.json, summary)
    return 0


if __name__ == "__main__":
    run_cli(main)
