"""Write the embedded real data set: scikit-learn's 1,797 handwritten digits as JPEG folders.

    python scripts/dataset/make_digits.py OUT_DIR [--size 32] [--val-fraction 0.2] [--seed 0]
        [--classes 5 6 7 8 9] [--train-per-class 30]

Creates OUT_DIR/train/<digit>/*.jpg and OUT_DIR/val/<digit>/*.jpg (stratified, deterministic).
Running it again on a complete folder does nothing.
"""
import argparse

from resnest.gluon.data.digits import write_digits
from resnest.gluon.utils.cli import run_cli


def main(argv=None):
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir')
    parser.add_argument('--size', type=int, default=32, help='image side in pixels')
    parser.add_argument('--val-fraction', type=float, default=0.2)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--classes', type=int, nargs='+', metavar='DIGIT',
                        help='only these digits (default: all ten)')
    parser.add_argument('--train-per-class', type=int, metavar='N',
                        help='at most N training images per digit (e.g. for fine-tuning)')
    parser.add_argument('--verbose', action='store_true')
    args = parser.parse_args(argv)
    counts = write_digits(args.out_dir, args.size, args.val_fraction, args.seed, args.classes,
                          args.train_per_class)
    if counts is None:
        print(f'{args.out_dir} is already complete; nothing to do')
    else:
        print(f'wrote {counts["train"]} train and {counts["val"]} val digits '
              f'({args.size}x{args.size} RGB JPEG) to {args.out_dir}')
    return 0


if __name__ == '__main__':
    run_cli(main)
