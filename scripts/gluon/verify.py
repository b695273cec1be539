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
from resnest.gluon.utils.cli import run_cli
from resnest.gluon.utils.threads import own_threads


def main(argv=None):
    own_threads()                                     # RESNEST_SHARED_CPU=1: no spin-waiting
    from resnest.gluon.inference.verify import VerifyConfig, verify
    from resnest.gluon.utils.config import build_parser, parse_config
    from resnest.gluon.utils.distributed import setup_distributed
    from resnest.gluon.utils.io import write_json
    parser = build_parser(VerifyConfig, __doc__.split("\n")[0])
    parser.add_argument("--json", metavar="FILE", help="write the results here")
    parser.add_argument("--verbose", action="store_true", help="also show MXNet's native log "
                        "lines")
    cfg = parse_config(VerifyConfig, parser, argv)
    out = parser.parse_args(argv).json
    dist = setup_distributed(num_gpus=cfg.num_gpus)
    summary = verify(cfg, dist)
    if dist.is_root:
        print(f"engine: {summary['backend']} ({summary['engine']})", flush=True)
        print(f"{cfg.model} {summary['backend']} {cfg.dtype} crop {summary['crop_size']} "
              f"({summary['preprocessing']}): top-1 {summary['top1']:.2f}% "
              f"top-5 {summary['top5']:.2f}% on {summary['images']} images; "
              f"model {summary['model_images_per_s']:.1f} img/s, "
              f"end-to-end {summary['end_to_end_images_per_s']:.1f} img/s", flush=True)
        if out:
            write_json(out, summary)
    return 0


if __name__ == "__main__":
    run_cli(main)
