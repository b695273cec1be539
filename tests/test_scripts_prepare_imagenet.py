"""prepare_imagenet.py on a miniature ILSVRC2012: real tar structure and a real devkit."""
import io
import os
import runpy
import tarfile

import numpy as np
import pytest

from _images import photos

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'scripts', 'dataset', 'prepare_imagenet.py')
# ILSVRC2012_ID -> WNID, deliberately not in sorted order; id 4 is an inner (non-leaf) synset.
SYNSETS = [(1, 'n03000000', 0), (2, 'n01000000', 0), (3, 'n02000000', 0), (4, 'n00001740', 3)]
VAL_IDS = [2, 1, 3, 3, 2, 1]


def jpeg(seed, size=(60, 80)):
    from PIL import Image
    rng = np.random.RandomState(seed)
    img = photos()[seed % 2]
    top, left = rng.randint(0, 300), rng.randint(0, 500)
    buf = io.BytesIO()
    Image.fromarray(img[top:top + size[0], left:left + size[1]]).save(buf, 'JPEG')
    return buf.getvalue()


def add_bytes(archive, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


def make_devkit(path):
    import scipy.io
    dtype = [('ILSVRC2012_ID', 'O'), ('WNID', 'O'), ('words', 'O'), ('num_children', 'O')]
    synsets = np.array([(i, w, f'words {w}', c) for i, w, c in SYNSETS], dtype=dtype)
    meta = io.BytesIO()
    scipy.io.savemat(meta, {'synsets': synsets.reshape(-1, 1)})
    truth = ''.join(f'{i}\n' for i in VAL_IDS).encode()
    with tarfile.open(path, 'w:gz') as archive:
        add_bytes(archive, 'ILSVRC2012_devkit_t12/data/meta.mat', meta.getvalue())
        add_bytes(archive, 'ILSVRC2012_devkit_t12/data/'
                           'ILSVRC2012_validation_ground_truth.txt', truth)


def make_archives(folder, per_class=3):
    os.makedirs(folder, exist_ok=True)
    with tarfile.open(os.path.join(folder, 'ILSVRC2012_img_train.tar'), 'w') as outer:
        for k, (_, wnid, children) in enumerate(SYNSETS):
            if children:
                continue
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode='w') as tar:
                for i in range(per_class):
                    add_bytes(tar, f'{wnid}_{i}.JPEG', jpeg(10 * k + i))
            add_bytes(outer, f'{wnid}.tar', inner.getvalue())
    with tarfile.open(os.path.join(folder, 'ILSVRC2012_img_val.tar'), 'w') as archive:
        for i in range(len(VAL_IDS)):
            add_bytes(archive, f'ILSVRC2012_val_{i + 1:08d}.JPEG', jpeg(100 + i))
    make_devkit(os.path.join(folder, 'ILSVRC2012_devkit_t12.tar.gz'))


def prepare(*argv):
    """The script's exit code for ``argv``, as from the command line (errors included)."""
    from resnest.gluon.utils.cli import run_cli
    with pytest.raises(SystemExit) as exit_info:
        run_cli(runpy.run_path(SCRIPT)['main'], list(argv) + ['--no-progress'])
    return exit_info.value.code


def test_extracts_sorted_wnid_folders_with_val_labels_from_devkit(tmp_path):
    make_archives(str(tmp_path / 'dl'))
    out = tmp_path / 'out'
    assert prepare('--download-dir', str(tmp_path / 'dl'), '--target-dir', str(out),
                   '--skip-checksum') == 0
    assert sorted(os.listdir(out / 'train')) == ['n01000000', 'n02000000', 'n03000000']
    assert all(len(os.listdir(out / 'train' / w)) == 3 for w in os.listdir(out / 'train'))
    wnid_of_id = {i: w for i, w, _ in SYNSETS}
    for number, class_id in enumerate(VAL_IDS, 1):
        assert (out / 'val' / wnid_of_id[class_id] / f'ILSVRC2012_val_{number:08d}.JPEG').is_file()


def test_rerun_skips_finished_classes_and_redoes_partial_ones(tmp_path, capsys):
    make_archives(str(tmp_path / 'dl'))
    out = tmp_path / 'out'
    args = ('--download-dir', str(tmp_path / 'dl'), '--target-dir', str(out), '--skip-checksum')
    assert prepare(*args) == 0
    marker = out / 'train' / 'n01000000' / 'untouched'
    marker.write_text('a finished class must not be extracted again')
    os.rename(out / 'train' / 'n02000000', out / 'train' / 'n02000000.partial')
    os.remove(out / 'train' / 'n02000000.partial' / 'n02000000_0.JPEG')
    capsys.readouterr()
    assert prepare(*args) == 0
    text = capsys.readouterr().out
    assert 'extracted 1 classes, 2 were already complete' in text and 'val: already' in text
    assert marker.is_file()
    assert len(os.listdir(out / 'train' / 'n02000000')) == 3
    assert not (out / 'train' / 'n02000000.partial').exists()


def test_with_rec_builds_train_and_val_records_with_wnid_labels(tmp_path):
    mx = pytest.importorskip('mxnet')
    make_archives(str(tmp_path / 'dl'))
    out = tmp_path / 'out'
    assert prepare('--download-dir', str(tmp_path / 'dl'), '--target-dir', str(out),
                   '--skip-checksum', '--with-rec', '--num-workers', '1') == 0
    rec = out / 'rec'
    assert (rec / 'train.classes.txt').read_text().split() == \
        ['n01000000', 'n02000000', 'n03000000']
    reader = mx.recordio.MXIndexedRecordIO(str(rec / 'train.idx'), str(rec / 'train.rec'), 'r')
    header, img = mx.recordio.unpack_img(reader.read_idx(reader.keys[0]))
    assert len(reader.keys) == 9 and min(img.shape[:2]) == 480
    wnids = sorted(w for _, w, c in SYNSETS if not c)
    wnid_of_id = {i: w for i, w, _ in SYNSETS}
    val = mx.recordio.MXIndexedRecordIO(str(rec / 'val.idx'), str(rec / 'val.rec'), 'r')
    labels = [mx.recordio.unpack(val.read_idx(k))[0].label for k in val.keys]
    lst = [line.split('\t') for line in (rec / 'val.lst').read_text().splitlines()]
    for label, (_, _, path) in zip(labels, lst):
        number = int(path.split('_')[-1].split('.')[0])
        assert wnids[int(label)] == wnid_of_id[VAL_IDS[number - 1]]
    original = (out / 'val' / lst[0][2]).read_bytes()
    assert mx.recordio.unpack(val.read_idx(val.keys[0]))[1] == original  # pass-through


def test_missing_archive_and_bad_checksum_are_one_sentence(tmp_path, capsys):
    assert prepare('--download-dir', str(tmp_path), '--target-dir', str(tmp_path / 'o')) == 2
    make_archives(str(tmp_path / 'dl'))
    assert prepare('--download-dir', str(tmp_path / 'dl'), '--target-dir',
                   str(tmp_path / 'o')) == 2
    err = capsys.readouterr().err
    assert 'not found' in err and 'MD5' in err and 'Traceback' not in err
    assert not (tmp_path / 'o' / 'train').exists()


def test_read_only_target_is_one_sentence(tmp_path):
    import sys
    from _readonly import run_read_only
    make_archives(str(tmp_path / 'dl'))
    target = tmp_path / 'out'
    target.mkdir()
    proc = run_read_only(target, [sys.executable, SCRIPT, '--download-dir', str(tmp_path / 'dl'),
                                  '--target-dir', str(target), '--skip-checksum',
                                  '--no-progress'])
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count('error:') == 1 and 'Traceback' not in proc.stderr
    assert str(target) in proc.stderr and os.listdir(target) == []
