"""Write the composed real-pixel segmentation / detection set: real digits pasted on real photos.

    python scripts/dataset/make_composed.py OUT_DIR [--size 256] [--train-images 300]
        [--val-images 100] [--seed 0] [--objects 2 6] [--object-size 40 120] [--min-visible 0.5]

Creates OUT_DIR/images/{training,validation}/*.jpg, OUT_DIR/annotations/{training,validation}/
*.png (ADE20K layout, 0 = unlabelled, 1 = background, 2.. = digits 0-9), OUT_DIR/classes.txt
and OUT_DIR/annotations/instances_{train,val}.json (COCO, RLE masks), the same images for
both. How it is made: resnest/gluon/data/composed.py. Running it again on a complete folder
does nothing.
"""
import argparse

from resnest.gluon.data.composed import write_composed
from resnest.gluon.utils.cli import run_cli


def main(argv=None):
    """Command-line entry point; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir')
    parser.add_argument('--size', type=int, default=256, help='image side in pixels')
    parser.add_argument('--train-images', type=int, default=300)
    parser.add_argument('--val-images', type=int, default=100)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--objects', type=int, nargs=2, default=(2, 6), metavar=('LOW', 'HIGH'),
                        help='digits pasted per image (before occlusion drops any)')
    parser.add_argument('--object-size', type=int, nargs=2, default=(40, 120),
                        metavar=('LOW', 'HIGH'), help='digit height in pixels')
    parser.add_argument('--min-visible', type=float, default=0.5,
                        help='drop a digit with less than this fraction of it visible')
    parser.add_argument('--verbose', action='store_true')
    args = parser.parse_args(argv)
    counts = write_composed(args.out_dir, size=args.size, train_images=args.train_images,
                            val_images=args.val_images, seed=args.seed, objects=args.objects,
                            object_size=args.object_size, min_visible=args.min_visible)
    if counts is None:
        print(f'{args.out_dir} is already complete; nothing to do')
        return 0
    for split, c in counts.items():
        print(f'{split}: {c["images"]} images, {c["annotations"]} objects '
              f'({c["dropped"]} dropped as mostly hidden)')
    print(f'wrote {args.size}x{args.size} JPEGs, class-index PNGs and COCO JSON to '
          f'{args.out_dir}')
    return 0


if __name__ == '__main__':
    run_cli(main)
