"""Classify your own images with ResNeSt and print the top-k classes with their names.

    python scripts/gluon/predict.py --model resnest50 photos/ cat.jpg 'shots/**/*.png'
    python scripts/gluon/predict.py --model resnest50 --resume params/imagenet-resnest50-9.params \
        --topk 3 --csv predictions.csv data/val.rec
    python scripts/gluon/predict.py --model resnest50 --dtype int8 --json - photos/
    python scripts/gluon/predict.py --model resnest50 --backend openvino --dtype int8 photos/

Inputs: image files, folders (searched recursively), glob patterns (quote them; ``**`` spans
folders) and .rec files (.idx beside them), any number. Names: the 1,000 ImageNet classes
(WordNet id and name) for the published weights, the training data's class names for a
checkpoint. Preprocessing: the weights' published evaluation crop (a checkpoint's: the crop it
was validated with in training). Exit code 0 when every image was classified, 1 when some could
not be read (each named on stderr), 2 on an error that stops the run.
"""
import sys

from resnest.gluon.utils.cli import run_cli
from resnest.gluon.utils.threads import own_threads


def main(argv=None):
    own_threads()
    from resnest.gluon.inference.predict import PredictConfig, run_predict
    from resnest.gluon.utils.config import build_parser, parse_config
    from resnest.gluon.utils.errors import UserError
    parser = build_parser(PredictConfig, __doc__.split("\n")[0])
    parser.add_argument("--json", metavar="FILE", help="write one row per image as JSON "
                        "('-': stdout)")
    parser.add_argument("--csv", metavar="FILE", help="write one row per image as CSV "
                        "('-': stdout)")
    parser.add_argument("--verbose", action="store_true", help="also show MXNet's native log "
                        "lines")
    cfg = parse_config(PredictConfig, parser, argv)
    args = parser.parse_args(argv)
    if args.json == "-" and args.csv == "-":
        raise UserError("--json - and --csv - cannot both go to stdout; write one to a file.")
    _, failed = run_predict(cfg, args.json, args.csv, out=sys.stdout, err=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    run_cli(main)
