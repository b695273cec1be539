"""Pack a folder of class sub-folders into MXNet RecordIO, or check an existing .rec/.idx pair.

    python scripts/dataset/im2rec.py IMAGE_DIR PREFIX [--resize 480] [--quality 95] [--workers 2]
    python scripts/dataset/im2rec.py --check PREFIX

Writes PREFIX.rec, PREFIX.idx, PREFIX.lst (MXNet's ``index<TAB>label<TAB>path``),
PREFIX.classes.txt (line i = class i = i-th sorted folder name) and PREFIX.skipped.tsv (images
that could not be used, with the reason). Output bytes do not depend on --workers.
"""
import argparse
import os
import sys

from resnest.gluon.data.classfile import classes_path, write_classes
from resnest.gluon.data.folder import MAX_PIXELS
from resnest.gluon.data.listing import write_lst
from resnest.gluon.data.pack import PackOptions, pack_records, plan_image_folder
from resnest.gluon.data.validate import check_records
from resnest.gluon.utils.cli import run_cli
from resnest.gluon.utils.errors import UserError
from resnest.gluon.utils.outputs import refuse_existing


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('image_dir', nargs='?', help='folder with one sub-folder per class')
    parser.add_argument('prefix', nargs='?', help='output prefix, e.g. data/train')
    parser.add_argument('--check', metavar='PREFIX',
                        help='decode every record of PREFIX.rec (warnings are errors), check '
                             'that PREFIX.idx covers them all, and say which file is wrong')
    parser.add_argument('--resize', type=int, default=0, metavar='N',
                        help='resize the shorter side to N pixels (0: keep)')
    parser.add_argument('--quality', type=int, default=95, help='JPEG quality (default 95)')
    parser.add_argument('--center-crop', action='store_true',
                        help='crop the centred square before resizing')
    parser.add_argument('--pass-through', action='store_true',
                        help='store upright JPEGs as they are, without re-encoding')
    parser.add_argument('--encoding', choices=['.jpg', '.png'], default='.jpg')
    parser.add_argument('--max-pixels', type=int, default=MAX_PIXELS, metavar='N',
                        help='skip images whose headers declare more than N pixels, before '
                             f'decoding (default {MAX_PIXELS}, PIL\'s decompression-bomb '
                             'limit; 0: no limit)')
    parser.add_argument('--keep-damaged-jpeg', action='store_true',
                        help='keep JPEGs libjpeg decodes with a "Corrupt JPEG data" warning '
                             '(for a validation set that must keep every image)')
    parser.add_argument('--workers', type=int, default=os.cpu_count() or 1,
                        help='encoding processes (default: all cores)')
    parser.add_argument('--lst', metavar='FILE',
                        help='pack the images of this existing .lst (paths under IMAGE_DIR)')
    parser.add_argument('--list-only', action='store_true',
                        help='write PREFIX.lst and PREFIX.classes.txt only')
    parser.add_argument('--shuffle', action='store_true',
                        help='shuffle the image order (recommended for training sets)')
    parser.add_argument('--seed', type=int, default=0, help='seed of --shuffle')
    parser.add_argument('--strict', action='store_true',
                        help='stop at the first unusable image instead of skipping it')
    parser.add_argument('--force', action='store_true',
                        help='replace an existing PREFIX.rec/.idx (or .lst with --list-only)')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')
    parser.add_argument('--verbose', action='store_true')
    args = parser.parse_args(argv)
    if args.check is None and (args.image_dir is None or args.prefix is None):
        parser.error('give IMAGE_DIR and PREFIX, or --check PREFIX')
    return args


def run_check(prefix):
    report = check_records(prefix)
    if report.bad is None:
        print(f'{prefix}.rec: OK, {report.records} records, all decode without a warning; '
              f'{prefix}.idx: {report.indexed} entries cover every record')
        return 0
    key, offset, reason = report.bad
    if report.file == 'idx':
        message = (f'{prefix}.idx is wrong ({prefix}.rec itself reads cleanly, '
                   f'{report.records} records): record {key} at byte {offset}: {reason}; '
                   'rebuild both with im2rec.py')
    elif report.bad_images:
        message = (f'{prefix}.rec is damaged: {report.bad_images} of its {report.records} '
                   f'images do not decode cleanly, the first is record {key} at byte {offset}: '
                   f'{reason}; rebuild it with im2rec.py')
    else:
        message = (f'{prefix}.rec is damaged: record {key} at byte {offset}: {reason} '
                   f'({report.records} good records before it); rebuild it with im2rec.py')
    print(f'error: {message}', file=sys.stderr)
    return 1


def _list_files(lst):
    """A .lst and the .classes.txt read beside it (none without a list)."""
    return [lst, classes_path(os.path.splitext(lst)[0])] if lst else []


def run_pack(args):
    if args.resize < 0 or not 1 <= args.quality <= 100 or args.workers < 1 or \
            args.max_pixels < 0:
        raise UserError('--resize and --max-pixels must be >= 0, --quality in 1..100 and '
                        '--workers >= 1')
    entries, classes = plan_image_folder(args.image_dir, lst=args.lst, shuffle=args.shuffle,
                                         seed=args.seed)
    if args.list_only:
        refuse_existing(_list_files(args.prefix + '.lst'), args.force, what='list')
        write_lst(args.prefix + '.lst', entries)
        if classes is not None:
            write_classes(args.prefix, classes)
        print(f'listed {len(entries)} images in {args.prefix}.lst')
        return 0
    options = PackOptions(resize=args.resize, quality=args.quality, center_crop=args.center_crop,
                          pass_through=args.pass_through, encoding=args.encoding,
                          max_pixels=args.max_pixels, keep_damaged_jpeg=args.keep_damaged_jpeg)
    from tqdm import tqdm
    with tqdm(total=len(entries), unit='img', disable=args.no_progress, smoothing=0.1) as bar:
        result = pack_records(args.image_dir, entries, args.prefix, options, args.workers,
                              args.strict, progress=bar.update, classes=classes,
                              force=args.force,
                              inputs=_list_files(args.lst))
    rate = result.packed / max(result.seconds, 1e-9)
    skipped = (f'; skipped {len(result.skipped)} unusable images (see {args.prefix}.skipped.tsv)'
               if result.skipped else '; nothing skipped')
    print(f'packed {result.packed} images into {args.prefix}.rec '
          f'({result.rec_bytes / 1e6:.1f} MB) in {result.seconds:.1f} s, {rate:.0f} img/s'
          f'{skipped}')
    return 0


def main(argv=None):
    """Command-line entry point; returns the exit code."""
    args = parse_args(argv)
    return run_check(args.check) if args.check else run_pack(args)


if __name__ == '__main__':
    run_cli(main, interrupted='interrupted; no output was left behind')
