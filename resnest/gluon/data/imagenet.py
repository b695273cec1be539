"""ILSVRC2012 from the official archives to ``train/<wnid>/`` and ``val/<wnid>/``, offline.

Archives (as distributed by image-net.org): ``ILSVRC2012_img_train.tar`` holding one inner tar
per class (``n01440764.tar``, ...), ``ILSVRC2012_img_val.tar`` holding 50,000 flat JPEGs, and
``ILSVRC2012_devkit_t12.tar.gz`` whose ``data/meta.mat`` maps ILSVRC2012_ID (1..1000, the leaf
synsets) to WordNet ids and whose ``data/ILSVRC2012_validation_ground_truth.txt`` gives one
ILSVRC2012_ID per validation image in file-name order. Class ``i`` is the ``i``-th sorted
WordNet id, the order of the published weights.

Resumable: each class is extracted into ``<wnid>.partial`` and renamed when complete, so a rerun
skips finished classes; the validation set is finished as a whole the same way; verified
archive checksums are remembered in ``.checksums.json`` beside the outputs.
"""
import contextlib
import json
import os
import shutil
import tarfile

from ..utils.checksum import file_digest
from ..utils.errors import UserError
from ..utils.io import write_json
from .pack import PackOptions

ARCHIVES = {
    'train': ('ILSVRC2012_img_train.tar', '1d675b47d978889d74fa0da5fadfb00e'),
    'val': ('ILSVRC2012_img_val.tar', '29b22e2961454d5413ddabcf34fc5622'),
    'devkit': ('ILSVRC2012_devkit_t12.tar.gz', 'fa75699e90414af021442c21a62c3abf'),
}
_META = 'data/meta.mat'
_GROUND_TRUTH = 'data/ILSVRC2012_validation_ground_truth.txt'


@contextlib.contextmanager
def _readable(archive):
    """Turn a damaged archive's tarfile/EOF error into one sentence naming it."""
    try:
        yield
    except (tarfile.TarError, EOFError) as err:
        raise UserError(f"{archive} is damaged ({err}); download it again.") from None


def archive_paths(download_dir):
    """``{'train': path, 'val': path, 'devkit': path}``; UserError naming any missing one."""
    paths = {key: os.path.join(download_dir, name) for key, (name, _) in ARCHIVES.items()}
    missing = [os.path.basename(p) for p in paths.values() if not os.path.isfile(p)]
    if missing:
        raise UserError(f'{", ".join(missing)} not found in {download_dir}; download the '
                        'ILSVRC2012 archives from image-net.org into that folder')
    return paths


def md5sum(path):
    return file_digest(path, 'md5')


def verify_checksums(paths, state_file):
    """Check each archive's MD5 against the published one; a verified (path, size, mtime) is
    remembered in ``state_file`` and not hashed again. UserError on a mismatch."""
    state = {}
    if os.path.isfile(state_file):
        with open(state_file, encoding='utf-8') as fin:
            state = json.load(fin)
    for key, path in paths.items():
        stat = os.stat(path)
        stamp = [os.path.abspath(path), stat.st_size, int(stat.st_mtime)]
        if state.get(key) == stamp:
            continue
        if md5sum(path) != ARCHIVES[key][1]:
            raise UserError(f'{path} does not have the published MD5 {ARCHIVES[key][1]}; '
                            'the download is incomplete or damaged, download it again')
        state[key] = stamp
        write_json(state_file, state)


def _member(archive, suffix):
    for member in archive.getmembers():
        if member.isfile() and member.name.endswith(suffix):
            return archive.extractfile(member).read()
    raise UserError(f'the devkit has no {suffix}; is it ILSVRC2012_devkit_t12.tar.gz?')


def read_devkit(devkit_path):
    """``(wnids sorted, val_wnid_per_image)`` from the devkit: the 1000 leaf synsets and the
    WordNet id of validation image ``i + 1``."""
    import io
    import scipy.io
    try:
        with tarfile.open(devkit_path) as archive:
            meta, truth = _member(archive, _META), _member(archive, _GROUND_TRUTH)
    except (tarfile.TarError, OSError) as err:
        raise UserError(f'{devkit_path} is not a readable tar.gz ({err})') from None
    synsets = scipy.io.loadmat(io.BytesIO(meta), squeeze_me=True)['synsets']
    id_to_wnid = {int(s['ILSVRC2012_ID']): str(s['WNID'])
                  for s in synsets if int(s['num_children']) == 0}
    try:
        val = [id_to_wnid[int(line)] for line in truth.decode().split()]
    except (KeyError, ValueError):
        raise UserError(f'the ground truth in {devkit_path} names an unknown class id') from None
    return sorted(id_to_wnid.values()), val


def _safe_name(name):
    base = os.path.basename(name)
    if not base or base in ('.', '..'):
        raise UserError(f'archive member {name!r} has no usable file name')
    return base


def _extract_flat(fileobj, folder):
    """Extract every file of a tar stream into ``folder`` (no sub-paths); returns the count."""
    count = 0
    with tarfile.open(fileobj=fileobj, mode='r|*') as inner:
        for member in inner:
            if member.isfile():
                with open(os.path.join(folder, _safe_name(member.name)), 'wb') as fout:
                    shutil.copyfileobj(inner.extractfile(member), fout, 1 << 20)
                count += 1
    return count


def extract_train(train_tar, out_dir, progress=None):
    """Extract each class tar into ``out_dir/<wnid>/``; finished classes are skipped.

    Returns the ``(extracted, skipped)`` class counts.
    """
    os.makedirs(out_dir, exist_ok=True)
    done = skipped = 0
    with _readable(train_tar), tarfile.open(train_tar, 'r:') as outer:
        for member in outer:
            if not (member.isfile() and member.name.endswith('.tar')):
                continue
            wnid = _safe_name(member.name)[:-4]
            final, partial = os.path.join(out_dir, wnid), os.path.join(out_dir, wnid + '.partial')
            if os.path.isdir(final):
                skipped += 1
            else:
                shutil.rmtree(partial, ignore_errors=True)
                os.makedirs(partial)
                _extract_flat(outer.extractfile(member), partial)
                os.replace(partial, final)
                done += 1
            if progress is not None:
                progress(1)
    return done, skipped


def extract_val(val_tar, out_dir, wnids, val_labels):
    """Extract the validation JPEGs into ``out_dir/<wnid>/`` (all classes created, so label
    ``i`` is ``wnids[i]`` even for a class without images); skipped if already complete.

    Returns the number of images extracted (0 when skipped).
    """
    if os.path.isdir(out_dir):
        return 0
    partial = out_dir + '.partial'
    shutil.rmtree(partial, ignore_errors=True)
    for wnid in wnids:
        os.makedirs(os.path.join(partial, wnid))
    count = 0
    with _readable(val_tar), tarfile.open(val_tar, 'r:') as archive:
        for member in archive:
            if not member.isfile():
                continue
            name = _safe_name(member.name)
            try:  # ILSVRC2012_val_00000001.JPEG -> image 1
                number = int(os.path.splitext(name)[0].rsplit('_', 1)[1])
                wnid = val_labels[number - 1]
            except (IndexError, ValueError):
                raise UserError(f'{val_tar} holds {name}, which the devkit ground truth does '
                                'not cover; is it ILSVRC2012_img_val.tar?') from None
            with open(os.path.join(partial, wnid, name), 'wb') as fout:
                shutil.copyfileobj(archive.extractfile(member), fout, 1 << 20)
            count += 1
    os.replace(partial, out_dir)
    return count


def rec_settings():
    """How ``--with-rec`` packs each split: ``{split: (PackOptions, shuffle)}``.

    train: shorter side 480, JPEG quality 95, shuffled with seed 0 -- the settings of GluonCV's
    published train.rec; 480 leaves the random-resized crop room for every training size up to
    320 and the file about 4x smaller than the originals, and the shuffle makes the contiguous
    per-rank blocks of the C++ loader random subsets.
    val: pass-through (original JPEG bytes; the few CMYK / rotated files re-encoded upright).
    Resizing val to 256 would be exact only for the 224-crop models: resnest200/269 evaluate
    a crop of 320/352 and 416/448 of the short side, which a 256 file would have to upscale.
    Originals make every model's published preprocessing exact, for about 6.4 GB. A val JPEG
    that libjpeg decodes with a damage warning is kept as the published evaluation decoded it
    (skipping it would change the 50,000 images the accuracies are counted over); train
    skips such files.
    """
    return {'train': (PackOptions(resize=480, quality=95), True),
            'val': (PackOptions(pass_through=True, quality=95, keep_damaged_jpeg=True), False)}
