"""im2rec.py and the packer: real photos with every awkward case, checked with MXNet's readers."""
import os
import runpy
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

mx = pytest.importorskip('mxnet')

from _procs import descendants as _descendants, kill_and_watch  # noqa: E402
from _images import (jpeg_bytes, make_awkward_tree, make_class_tree, photos,  # noqa: E402
                     png_bomb, with_declared_size, with_flipped_bytes)
from resnest.gluon.data.folder import BadImage, decode_image, jpeg_info  # noqa: E402
from resnest.gluon.data.recordio import encode_record, pack_payload  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'scripts', 'dataset', 'im2rec.py')


def im2rec(*argv):
    """The script's exit code for ``argv``, as from the command line (errors included)."""
    from resnest.gluon.utils.cli import run_cli
    with pytest.raises(SystemExit) as exit_info:
        run_cli(runpy.run_path(SCRIPT)['main'], list(argv))
    return exit_info.value.code


@pytest.fixture(scope='module')
def awkward(tmp_path_factory):
    root = tmp_path_factory.mktemp('awkward')
    good, bad = make_awkward_tree(str(root / 'images'))
    prefix = str(root / 'out' / 'w1')
    assert im2rec(str(root / 'images'), prefix, '--resize', '64', '--workers', '1',
                  '--no-progress') == 0
    return root, good, bad, prefix


def read_all(prefix):
    rec = mx.recordio.MXIndexedRecordIO(prefix + '.idx', prefix + '.rec', 'r')
    out = {}
    for key in rec.keys:
        header, img = mx.recordio.unpack_img(rec.read_idx(key))
        out[key] = (header.label, img)
    rec.close()
    return out


def test_every_good_image_once_with_its_label_upright_and_resized(awkward):
    _, good, _, prefix = awkward
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


def test_bad_images_are_skipped_and_reported(awkward):
    _, _, bad, prefix = awkward
    rows = [line.rstrip('\n').split('\t') for line in open(prefix + '.skipped.tsv',
                                                          encoding='utf-8')][1:]
    assert sorted(r[0] for r in rows) == sorted(bad)
    assert all(r[1] for r in rows)


def test_exif_rotation_is_applied_not_just_shape(awkward):
    root, _, _, prefix = awkward
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


def test_one_and_two_workers_give_identical_bytes(awkward, tmp_path):
    root, _, _, prefix = awkward
    other = str(tmp_path / 'w2')
    assert im2rec(str(root / 'images'), other, '--resize', '64', '--workers', '2',
                  '--no-progress') == 0
    for ext in ('.rec', '.idx', '.lst', '.skipped.tsv', '.classes.txt'):
        assert open(prefix + ext, 'rb').read() == open(other + ext, 'rb').read(), ext


def test_image_record_iter_reads_every_record(awkward):
    _, good, _, prefix = awkward
    it = mx.io.ImageRecordIter(path_imgrec=prefix + '.rec', data_shape=(3, 48, 48),
                               batch_size=1)
    labels = [float(batch.label[0].asscalar()) for batch in it]
    assert sorted(labels) == sorted(label for label, _ in good.values())


def test_check_mode_accepts_good_and_names_first_bad_record(awkward, tmp_path, capsys):
    _, _, _, prefix = awkward
    assert im2rec('--check', prefix) == 0
    damaged = str(tmp_path / 'damaged')
    data = bytearray(open(prefix + '.rec', 'rb').read())
    offsets = [int(line.split('\t')[1]) for line in open(prefix + '.idx')]
    data[offsets[3]:offsets[3] + 4] = b'XXXX'  # destroy the 4th record's magic
    open(damaged + '.rec', 'wb').write(bytes(data))
    open(damaged + '.idx', 'w').write(open(prefix + '.idx').read())
    assert im2rec('--check', damaged) == 1
    err = capsys.readouterr().err
    assert f'at byte {offsets[3]}' in err and 'Traceback' not in err


def test_strict_fails_on_a_bad_image_and_leaves_no_rec(awkward, tmp_path, capsys):
    root, _, _, _ = awkward
    prefix = str(tmp_path / 'strict')
    assert im2rec(str(root / 'images'), prefix, '--strict', '--workers', '1',
                  '--no-progress') == 2
    assert 'error:' in capsys.readouterr().err
    assert not [p for p in os.listdir(tmp_path) if p.startswith('strict.rec')]


def test_list_only_then_pack_from_lst_with_shuffle(tmp_path):
    images = str(tmp_path / 'img')
    count = make_class_tree(images, classes=3, per_class=3)
    prefix = str(tmp_path / 'listed')
    assert im2rec(images, prefix, '--list-only', '--shuffle', '--seed', '3') == 0
    assert not os.path.exists(prefix + '.rec')
    lst = open(prefix + '.lst').read().splitlines()
    assert len(lst) == count
    assert [row.split('\t')[2] for row in lst] != sorted(row.split('\t')[2] for row in lst)
    out = str(tmp_path / 'packed')
    assert im2rec(images, out, '--lst', prefix + '.lst', '--no-progress', '--workers', '1') == 0
    records = read_all(out)
    for row in lst:
        key, label, path = row.split('\t')
        assert records[int(key)][0] == float(label) == float(path[1])


def test_pass_through_keeps_upright_jpeg_bytes(tmp_path):
    images = str(tmp_path / 'img')
    make_class_tree(images, classes=1, per_class=2)
    prefix = str(tmp_path / 'pt')
    assert im2rec(images, prefix, '--pass-through', '--no-progress', '--workers', '1') == 0
    rec = mx.recordio.MXIndexedRecordIO(prefix + '.idx', prefix + '.rec', 'r')
    _, stored = mx.recordio.unpack(rec.read_idx(0))
    assert stored == open(os.path.join(images, 'c0', 'img0.jpg'), 'rb').read()


def test_center_crop_gives_squares(tmp_path):
    images = str(tmp_path / 'img')
    make_class_tree(images, classes=1, per_class=2)
    prefix = str(tmp_path / 'cc')
    assert im2rec(images, prefix, '--center-crop', '--resize', '20', '--no-progress') == 0
    assert all(img.shape[:2] == (20, 20) for _, img in read_all(prefix).values())


def test_user_errors_are_one_sentence(tmp_path, capsys):
    assert im2rec(str(tmp_path / 'missing'), str(tmp_path / 'x')) == 2
    assert im2rec('--check', str(tmp_path / 'nothing')) == 2
    err = capsys.readouterr().err
    assert err.count('error:') == 2 and 'Traceback' not in err


def test_record_writer_splits_payloads_containing_the_magic_word(tmp_path):
    magic = (0xCED7230A).to_bytes(4, 'little')
    payload = pack_payload((1.0,), 7, b'ab' + b'\x00\x00' + magic + b'xyz' + magic + b'q')
    path = str(tmp_path / 'm.rec')
    open(path, 'wb').write(encode_record(payload))
    reader = mx.recordio.MXRecordIO(path, 'r')
    assert reader.read() == payload


def test_truncated_jpeg_detected_and_reduced_decode_keeps_size():
    from io import BytesIO
    from PIL import Image
    buf = BytesIO()
    Image.fromarray(np.zeros((400, 600, 3), np.uint8)).save(buf, 'JPEG')
    data = buf.getvalue()
    assert jpeg_info(data)['complete'] and jpeg_info(data)['height'] == 400
    with pytest.raises(BadImage):
        decode_image(data[:-100])
    assert decode_image(data, min_side=100).shape[:2] == (100, 150)  # 1/4 scale suffices
    assert decode_image(data, min_side=101).shape[:2] == (200, 300)


def _started(pid):
    with open(f'/proc/{pid}/stat') as fstat:
        return int(fstat.read().rsplit(')', 1)[1].split()[19])


def _workers(pid):
    """The packer's worker processes, newest last: its children but the stderr filter run_cli
    forks first (the earliest started) and multiprocessing's helper processes, whose start
    time can fall in the same clock tick as a worker's."""
    children = []
    for child in _descendants(pid):
        try:
            with open(f'/proc/{child}/cmdline', 'rb') as f:
                cmdline = f.read()
        except OSError:
            continue
        if b'resource_tracker' not in cmdline and b'forkserver' not in cmdline:
            children.append(child)
    return sorted(children, key=_started)[1:]


def test_killed_worker_aborts_and_leaves_no_finished_rec(tmp_path):
    images = str(tmp_path / 'img')
    make_class_tree(images, classes=2, per_class=80, size=(400, 600))
    prefix = str(tmp_path / 'killed')
    proc = subprocess.Popen([sys.executable, SCRIPT, images, prefix, '--workers', '2',
                             '--no-progress', '--encoding', '.png'],
                            stderr=subprocess.PIPE, text=True)
    workers = []
    for _ in range(400):       # below it: the stderr filter (first), the resource tracker, workers
        time.sleep(0.025)
        workers = _workers(proc.pid)
        if workers or proc.poll() is not None:
            break
    if not workers:
        proc.wait()
        pytest.skip('packing finished before a worker could be killed')
    os.kill(workers[-1], signal.SIGKILL)
    _, err = proc.communicate(timeout=60)
    if proc.returncode == 0:
        pytest.skip('packing finished before the kill landed')
    assert proc.returncode == 2 and 'worker' in err and 'Traceback' not in err
    assert not os.path.exists(prefix + '.rec') and not os.path.exists(prefix + '.idx')


@pytest.fixture(scope='module')
def hostile(tmp_path_factory):
    """A folder with one good photo and four files that must not be packed."""
    root = tmp_path_factory.mktemp('hostile') / 'images'
    china = photos()[0]
    good = jpeg_bytes(china[:120, :160])
    photo = jpeg_bytes(china)
    files = {
        'good.jpg': good,
        # header says 30000x30000 (900 Mpx): refused before decoding, by the pixel limit
        'huge_truncated.jpg': with_declared_size(photo, 30000, 30000),
        # 10000x10000 = 100 Mpx from a file of a few KB
        'bomb.png': png_bomb(10000, 10000),
        # under the limit, but the data ends long before the declared 2000x2000 frame
        'short_data.jpg': with_declared_size(photo, 2000, 2000),
        # bit rot inside the scan data
        'flipped.jpg': with_flipped_bytes(photo, len(photo) // 3),
    }
    os.makedirs(root / 'c0')
    for name, data in files.items():
        (root / 'c0' / name).write_bytes(data)
    return root


def test_pixel_limit_and_libjpeg_damage_warnings_reject_images(hostile, tmp_path, capfd):
    prefix = str(tmp_path / 'out')
    assert im2rec(str(hostile), prefix, '--resize', '32', '--workers', '1',
                  '--no-progress') == 0
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
    assert im2rec(str(hostile), prefix, '--pass-through', '--keep-damaged-jpeg', '--workers',
                  '1', '--no-progress') == 0
    listed = sorted(e.split('\t')[2] for e in open(prefix + '.lst').read().splitlines())
    assert listed == ['c0/flipped.jpg', 'c0/good.jpg', 'c0/short_data.jpg']
    rec = mx.recordio.MXIndexedRecordIO(prefix + '.idx', prefix + '.rec', 'r')
    keys = {e.split('\t')[2]: int(e.split('\t')[0]) for e in open(prefix + '.lst')
            .read().splitlines()}
    stored = mx.recordio.unpack(rec.read_idx(keys['c0/flipped.jpg']))[1]
    assert stored == open(os.path.join(str(hostile), 'c0', 'flipped.jpg'), 'rb').read()
    from resnest.gluon.data.imagenet import rec_settings
    assert rec_settings()['val'][0].keep_damaged_jpeg and \
        not rec_settings()['train'][0].keep_damaged_jpeg


def test_strict_and_max_pixels_option(hostile, tmp_path, capsys):
    assert im2rec(str(hostile), str(tmp_path / 's'), '--strict', '--workers', '1',
                  '--no-progress') == 2
    err = capsys.readouterr().err
    assert 'is unusable' in err and 'Traceback' not in err
    assert not os.path.exists(tmp_path / 's.rec')
    # 120x160 = 19200 pixels: a limit below that refuses even the good photo, and a pack of
    # nothing is an error, not "packed 0 images" with exit 0; nothing is written
    assert im2rec(str(hostile), str(tmp_path / 'm'), '--max-pixels', '19199', '--workers',
                  '1', '--no-progress') == 2
    assert 'none of the 5 images could be packed' in capsys.readouterr().err
    assert not [n for n in os.listdir(tmp_path) if n.startswith('m.')]
    assert im2rec(str(hostile), str(tmp_path / 'n'), '--max-pixels', '19200', '--workers',
                  '1', '--no-progress') == 0
    assert len(open(tmp_path / 'n.lst').read().splitlines()) == 1


def test_decode_warning_capture_keeps_other_stderr_output(capfd):
    from resnest.gluon.data import folder
    photo = jpeg_bytes(photos()[1])
    with pytest.raises(BadImage, match='Corrupt JPEG data'):
        decode_image(with_flipped_bytes(photo, len(photo) // 2))
    assert decode_image(photo).shape == (427, 640, 3)
    original = folder.cv2.imdecode

    def chatty(buf, flag):                          # another thread printing meanwhile
        os.write(2, b'unrelated message\n')
        return original(buf, flag)
    folder.cv2.imdecode = chatty
    try:
        decode_image(photo)
    finally:
        folder.cv2.imdecode = original
    assert capfd.readouterr().err == 'unrelated message\n'


def _copy_pair(prefix, dest, rec=None, idx_lines=None):
    data = open(prefix + '.rec', 'rb').read() if rec is None else rec
    lines = open(prefix + '.idx').read().splitlines(keepends=True)
    open(dest + '.rec', 'wb').write(data)
    open(dest + '.idx', 'w').write(''.join(lines if idx_lines is None else idx_lines(lines)))
    return dest


def test_check_decodes_every_image_with_warnings_as_errors(awkward, tmp_path, capsys):
    _, _, _, prefix = awkward
    offsets = [int(line.split('\t')[1]) for line in open(prefix + '.idx')]
    keys = [int(line.split('\t')[0]) for line in open(prefix + '.idx')]
    data = open(prefix + '.rec', 'rb').read()
    middle = (offsets[4] + offsets[5]) // 2          # inside the 5th record's JPEG scan
    damaged = _copy_pair(prefix, str(tmp_path / 'flipped'), rec=with_flipped_bytes(data, middle))
    assert im2rec('--check', damaged) == 1
    err = capsys.readouterr().err
    assert f'{damaged}.rec is damaged: 1 of its {len(offsets)} images' in err
    assert f'record {keys[4]} at byte {offsets[4]}' in err and 'Corrupt JPEG' in err


def test_check_says_the_idx_misses_records(awkward, tmp_path, capsys):
    _, _, _, prefix = awkward
    offsets = [int(line.split('\t')[1]) for line in open(prefix + '.idx')]
    partial = _copy_pair(prefix, str(tmp_path / 'partial'), idx_lines=lambda ls: ls[:5])
    assert im2rec('--check', partial) == 1
    err = capsys.readouterr().err
    assert f'{partial}.idx is wrong' in err and 'reads cleanly' in err
    assert f'covers 5 of the {len(offsets)} records' in err and f'byte {offsets[5]}' in err
    assert im2rec('--check', prefix) == 0
    assert 'cover every record' in capsys.readouterr().out


def test_existing_prefix_refused_unless_force(tmp_path, capsys):
    images = str(tmp_path / 'img')
    make_class_tree(images, classes=2, per_class=2)
    prefix = str(tmp_path / 'out')
    assert im2rec(images, prefix, '--no-progress', '--workers', '1') == 0
    before = {ext: open(prefix + ext, 'rb').read() for ext in ('.rec', '.idx', '.classes.txt')}
    os.rename(os.path.join(images, 'c1'), os.path.join(images, 'other'))
    capsys.readouterr()
    assert im2rec(images, prefix, '--no-progress', '--workers', '1') == 2
    assert f'{prefix}.rec already exists; pass --force' in capsys.readouterr().err
    assert before == {ext: open(prefix + ext, 'rb').read() for ext in before}   # untouched
    assert im2rec(images, prefix, '--no-progress', '--workers', '1', '--force') == 0
    assert open(prefix + '.classes.txt').read() == 'c0\nother\n'
    assert im2rec(images, prefix, '--list-only') == 2
    assert im2rec(images, prefix, '--list-only', '--force') == 0


def test_read_only_output_folder_is_one_sentence(tmp_path):
    from _readonly import run_read_only
    images, out = str(tmp_path / 'img'), tmp_path / 'ro'
    make_class_tree(images, classes=1, per_class=2)
    out.mkdir()
    for prefix in (out / 'x', out / 'sub' / 'x'):
        proc = run_read_only(out, [sys.executable, SCRIPT, images, str(prefix), '--no-progress'])
        assert proc.returncode == 2 and proc.stderr.count('error:') == 1
        assert 'Read-only' in proc.stderr or 'ermission' in proc.stderr
        assert 'Traceback' not in proc.stderr and os.listdir(out) == []


def test_kill_9_of_the_packer_takes_its_workers_with_it(tmp_path):
    images = str(tmp_path / 'img')
    make_class_tree(images, classes=2, per_class=80, size=(400, 600))
    proc = subprocess.Popen([sys.executable, SCRIPT, images, str(tmp_path / 'k'), '--workers',
                             '2', '--no-progress', '--encoding', '.png'],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    for _ in range(400):                          # the stderr filter + 2 workers
        time.sleep(0.025)
        workers = _descendants(proc.pid)
        if len(workers) >= 3 or proc.poll() is not None:
            break
    if len(workers) < 3:
        proc.wait()
        pytest.skip('packing finished before the workers could be seen')
    alive = kill_and_watch(proc, workers)
    assert alive == []
