"""The packer (:mod:`resnest.gluon.data.pack`) on real photos with every awkward case: each
readable image once, upright, with its label, each other one listed with its reason; the
bytes do not depend on the workers; every record reads back with MXNet's own readers."""
import os

import numpy as np
import pytest

mx = pytest.importorskip('mxnet')

from _images import make_class_tree, make_hostile_tree  # noqa: E402
from _records import read_all  # noqa: E402
from resnest.gluon.data import PackOptions, pack_records, plan_image_folder  # noqa: E402
from resnest.gluon.utils.errors import UserError  # noqa: E402


def pack(images, prefix, workers=1, strict=False, **options):
    """Pack the class folders under ``images`` into ``prefix`` as im2rec.py does."""
    entries, classes = plan_image_folder(str(images))
    return pack_records(str(images), entries, str(prefix), PackOptions(**options), workers,
                        strict, classes=classes)


@pytest.fixture(scope='module')
def hostile(tmp_path_factory):
    return make_hostile_tree(tmp_path_factory.mktemp('hostile') / 'images')



def test_every_good_image_once_with_its_label_upright_and_resized(awkward_pack):
    _, good, _, prefix = awkward_pack
    records = read_all(prefix)
    lst = [line.rstrip('\n').split('\t') for line in open(prefix + '.lst', encoding='utf-8')]
    assert sorted(row[2] for row in lst) == sorted(good)
    for key, label, path in lst:
        rec_label, img = records[int(key)]
        want_label, (height, width) = good[path]
        assert rec_label == want_label == float(label)
        assert min(img.shape[:2]) == 64
        # upright: the long side is where the upright photo has it
        assert (img.shape[0] > img.shape[1]) == (height > width), path
    assert open(prefix + '.classes.txt', encoding='utf-8').read().split('\n')[:3] == \
        ['alpha', 'bétula tree', 'zebra']


def test_bad_images_are_skipped_and_reported(awkward_pack):
    _, _, bad, prefix = awkward_pack
    rows = [line.rstrip('\n').split('\t') for line in open(prefix + '.skipped.tsv',
                                                          encoding='utf-8')][1:]
    assert sorted(r[0] for r in rows) == sorted(bad)
    assert all(r[1] for r in rows)


def test_exif_rotation_is_applied_not_just_shape(awkward_pack):
    root, _, _, prefix = awkward_pack
    from PIL import Image
    original = np.asarray(Image.open(str(root / 'images' / 'alpha' / 'plain.jpg')))
    records = read_all(prefix)
    lst = {row.split('\t')[2].rstrip('\n'): int(row.split('\t')[0])
           for row in open(prefix + '.lst', encoding='utf-8')}
    rotated = records[lst['alpha/sub dir/rotated 90.jpg']][1][:, :, ::-1]  # BGR -> RGB
    # orientation 6 = the stored pixels must be turned 90 degrees clockwise to be upright
    expected = np.rot90(original, k=-1)
    small = np.asarray(Image.fromarray(np.ascontiguousarray(expected)).resize(
        (rotated.shape[1], rotated.shape[0])), dtype=np.float32)
    assert np.abs(small - rotated).mean() < 12
    assert np.abs(np.rot90(small, 2) - rotated).mean() > 30


def test_one_and_two_workers_give_identical_bytes(awkward_pack, tmp_path):
    root, _, _, prefix = awkward_pack
    other = str(tmp_path / 'w2')
    pack(root / 'images', other, workers=2, resize=64)
    for ext in ('.rec', '.idx', '.lst', '.skipped.tsv', '.classes.txt'):
        assert open(prefix + ext, 'rb').read() == open(other + ext, 'rb').read(), ext


def test_image_record_iter_reads_every_record(awkward_pack):
    _, good, _, prefix = awkward_pack
    it = mx.io.ImageRecordIter(path_imgrec=prefix + '.rec', data_shape=(3, 48, 48),
                               batch_size=1)
    labels = [float(batch.label[0].asscalar()) for batch in it]
    assert sorted(labels) == sorted(label for label, _ in good.values())


def test_strict_fails_on_a_bad_image_and_leaves_nothing(awkward_pack, tmp_path):
    root, _, bad, _ = awkward_pack
    with pytest.raises(UserError) as err:
        pack(root / 'images', tmp_path / 'strict', strict=True)
    assert any(path in str(err.value) for path in bad)
    assert os.listdir(tmp_path) == []


def test_pass_through_keeps_upright_jpeg_bytes(tmp_path):
    images = str(tmp_path / 'img')
    make_class_tree(images, classes=1, per_class=2)
    prefix = str(tmp_path / 'pt')
    pack(images, prefix, pass_through=True)
    rec = mx.recordio.MXIndexedRecordIO(prefix + '.idx', prefix + '.rec', 'r')
    _, stored = mx.recordio.unpack(rec.read_idx(0))
    assert stored == open(os.path.join(images, 'c0', 'img0.jpg'), 'rb').read()


def test_center_crop_gives_squares(tmp_path):
    images = str(tmp_path / 'img')
    make_class_tree(images, classes=1, per_class=2)
    prefix = str(tmp_path / 'cc')
    pack(images, prefix, center_crop=True, resize=20)
    assert all(img.shape[:2] == (20, 20) for _, img in read_all(prefix).values())


def test_pixel_limit_and_libjpeg_damage_warnings_reject_images(hostile, tmp_path, capfd):
    prefix = str(tmp_path / 'out')
    pack(hostile, prefix, resize=32)
    rows = dict(line.rstrip('\n').split('\t') for line in
                open(prefix + '.skipped.tsv', encoding='utf-8').readlines()[1:])
    assert sorted(rows) == ['c0/bomb.png', 'c0/flipped.jpg', 'c0/huge_truncated.jpg',
                            'c0/short_data.jpg']
    assert rows['c0/huge_truncated.jpg'].startswith('too large: 30000x30000')
    assert rows['c0/bomb.png'].startswith('too large: 10000x10000')
    assert rows['c0/flipped.jpg'].startswith('corrupt JPEG (Corrupt JPEG data')
    assert rows['c0/short_data.jpg'].startswith('corrupt JPEG (Corrupt JPEG data')
    assert [e.split('\t')[2] for e in open(prefix + '.lst').read().splitlines()] == \
        ['c0/good.jpg']
    assert 'Corrupt JPEG' not in capfd.readouterr().err    # reported, not printed


def test_keep_damaged_jpeg_keeps_them_as_they_decode(hostile, tmp_path):
    """A validation set packed to reproduce published accuracies keeps every decodable JPEG
    (pass-through: the original bytes); bombs and truncated files stay out."""
    prefix = str(tmp_path / 'kept')
    pack(hostile, prefix, pass_through=True, keep_damaged_jpeg=True)
    listed = sorted(e.split('\t')[2] for e in open(prefix + '.lst').read().splitlines())
    assert listed == ['c0/flipped.jpg', 'c0/good.jpg', 'c0/short_data.jpg']
    rec = mx.recordio.MXIndexedRecordIO(prefix + '.idx', prefix + '.rec', 'r')
    keys = {e.split('\t')[2]: int(e.split('\t')[0]) for e in open(prefix + '.lst')
            .read().splitlines()}
    stored = mx.recordio.unpack(rec.read_idx(keys['c0/flipped.jpg']))[1]
    assert stored == open(os.path.join(str(hostile), 'c0', 'flipped.jpg'), 'rb').read()
