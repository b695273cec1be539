"""Prepare ILSVRC2012 from the official archives, offline: checksums, extraction, RecordIO.

    python scripts/dataset/prepare_imagenet.py --download-dir ARCHIVES --target-dir OUT \
        [--with-rec] [--num-workers 8] [--skip-checksum]

Makes OUT/train/<wnid>/*.JPEG and OUT/val/<wnid>/*.JPEG (class i = i-th sorted WordNet id, as
the published weights), and with --with-rec OUT/rec/{train,val}.{rec,idx,lst,classes.txt}.
A rerun skips what is complete (finished classes, the finished val set, finished .rec files).
"""
import argparse
import os

from resnest.gluon.data import imagenet
from resnest.gluon.data.pack import pack_records, plan_image_folder
from resnest.gluon.utils.cli import run_cli
from resnest.gluon.utils.errors import UserError


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--download-dir', required=True,
                        help='folder with ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar '
                             'and ILSVRC2012_devkit_t12.tar.gz')
    parser.add_argument('--target-dir', required=True, help='output folder')
    parser.add_argument('--skip-checksum', action='store_true',
                        help='do not verify the archives\' MD5 (it reads ~150 GB)')
    parser.add_argument('--with-rec', action='store_true',
                        help='also build rec/train.rec (short side 480) and rec/val.rec')
    parser.add_argument('--num-workers', type=int, default=os.cpu_count() or 1,
                        help='processes encoding images for --with-rec')
    parser.add_argument('--no-progress', action='store_true')
    parser.add_argument('--verbose', action='store_true')
    return parser.parse_args(argv)


def extract(args, paths):
    from tqdm import tqdm
    wnids, val_labels = imagenet.read_devkit(paths['devkit'])
    train_dir = os.path.join(args.target_dir, 'train')
    with tqdm(total=len(wnids), unit='class', desc='train', disable=args.no_progress) as bar:
        done, skipped = imagenet.extract_train(paths['train'], train_dir, bar.update)
    found = sorted(d for d in os.listdir(train_dir) if not d.endswith('.partial'))
    if found != wnids:
        raise UserError(f'{paths["train"]} holds {len(found)} classes but the devkit lists '
                        f'{len(wnids)}; the archive is incomplete or from another release')
    print(f'train: extracted {done} classes, {skipped} were already complete')
    count = imagenet.extract_val(paths['val'], os.path.join(args.target_dir, 'val'), wnids,
                                 val_labels)
    print(f'val: extracted {count} images' if count else 'val: already complete')


def build_records(args):
    from tqdm import tqdm
    rec_dir = os.path.join(args.target_dir, 'rec')
    for split, (options, shuffle) in imagenet.rec_settings().items():
        prefix = os.path.join(rec_dir, split)
        if os.path.isfile(prefix + '.rec'):
            print(f'{prefix}.rec already complete')
            continue
        # no .rec: an earlier run stopped before it; its leftovers (.idx, .lst) are replaced
        entries, classes = plan_image_folder(os.path.join(args.target_dir, split),
                                             shuffle=shuffle, seed=0)
        with tqdm(total=len(entries), unit='img', desc=split, disable=args.no_progress) as bar:
            result = pack_records(os.path.join(args.target_dir, split), entries, prefix,
                                  options, args.num_workers, progress=bar.update,
                                  classes=classes, force=True)
        print(f'{prefix}.rec: {result.packed} images, {len(result.skipped)} skipped '
              f'(see {prefix}.skipped.tsv), {result.rec_bytes / 1e9:.2f} GB')


def main(argv=None):
    """Command-line entry point; returns the exit code."""
    args = parse_args(argv)
    paths = imagenet.archive_paths(args.download_dir)
    os.makedirs(args.target_dir, exist_ok=True)
    if not args.skip_checksum:
        imagenet.verify_checksums(paths, os.path.join(args.target_dir, '.checksums.json'))
    extract(args, paths)
    if args.with_rec:
        build_records(args)
    return 0


if __name__ == '__main__':
    run_cli(main, interrupted='interrupted; rerun the same command to resume')
