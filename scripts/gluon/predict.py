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
import argparse
import sys

from resnest.gluon.utils.cli import run_cli
from resnest.gluon.utils.threads import own_threads


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("inputs", nargs="*", metavar="INPUT",
                   help="image file, folder, glob pattern or .rec")
    p.add_argument("--model", required=True, help="registered model name, e.g. resnest50")
    p.add_argument("--resume", "--params-file", dest="resume", metavar="FILE",
                   help="a checkpoint's .params (default: the published weights)")
    p.add_argument("--topk", type=int, default=5, help="classes to show per image")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "int8"),
                   help="int8 calibrates on the first --calib-batches batches of the inputs")
    p.add_argument("--backend", default="mxnet", choices=("mxnet", "onnxruntime", "openvino"),
                   help="inference engine (onnxruntime, openvino: pip install resnest[deploy])")
    p.add_argument("--calib-batches", type=int, default=4)
    p.add_argument("--calib-mode", choices=("entropy", "naive"),
                   help="int8 calibration (default: entropy for mxnet, min/max otherwise)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--crop-size", type=int, help="default: the weights' evaluation crop")
    p.add_argument("--crop-ratio", type=float, help="crop / resized short side (crops <= 320)")
    p.add_argument("-j", "--num-workers", dest="num_workers", type=int, default=2,
                   help="decoding processes (0: decode in this process)")
    p.add_argument("--json", metavar="FILE", help="write one row per image as JSON ('-': stdout)")
    p.add_argument("--csv", metavar="FILE", help="write one row per image as CSV ('-': stdout)")
    p.add_argument("--verbose", action="store_true", help="also show MXNet's native log lines")
    return p.parse_args(argv)


def main(argv=None):
    own_threads()
    args = parse_args(argv)
    from resnest.gluon.inference.predict import PredictConfig, run_predict
    if args.json == "-" and args.csv == "-":
        from resnest.gluon.utils.errors import UserError
        raise UserError("--json - and --csv - cannot both go to stdout; write one to a file.")
    cfg = PredictConfig(args.model, args.inputs, args.resume, args.topk, args.dtype,
                        args.batch_size, args.crop_size, args.crop_ratio, args.calib_batches,
                        args.calib_mode, args.num_workers, args.backend)
    _, failed = run_predict(cfg, args.json, args.csv, out=sys.stdout, err=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    run_cli(main)
