"""Training / validation loaders: sharding, determinism, shapes, published eval crops."""
import os
import runpy

import numpy as np
import pytest

mx = pytest.importorskip('mxnet')

from _images import make_class_tree, photos  # noqa: E402
from _procs import descendants as _descendants, kill_and_watch  # noqa: E402
from resnest.gluon.data import eval_loader, eval_transform, rec_info, train_loader  # noqa: E402
from resnest.gluon.data.autoaugment import ImageNetPolicy  # noqa: E402
from resnest.gluon.data.cpp_loader import part_bounds  # noqa: E402
from resnest.gluon.data.sharding import train_shard, val_plan, val_shard  # noqa: E402
from resnest.gluon.utils.errors import UserError  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NUM = 21


@pytest.fixture(scope='module')
def rec(tmp_path_factory):
    root = tmp_path_factory.mktemp('pipes')
    make_class_tree(str(root / 'img'), classes=3, per_class=7, size=(40, 56))
    main = runpy.run_path(os.path.join(ROOT, 'scripts', 'dataset', 'im2rec.py'))['main']
    assert main([str(root / 'img'), str(root / 'd'), '--no-progress', '--shuffle']) == 0
    return str(root / 'd.rec')


def labels_of(loader):
    out = []
    for data, label, valid in loader:
        out.append((label.asnumpy()[:valid].tolist(), data.asnumpy()))
    return out


def test_rec_info_counts_and_errors(rec, tmp_path):
    info = rec_info(rec)
    assert (info.num_samples, info.classes, info.present) == (NUM, 3, 3)
    assert info.class_names == ['c0', 'c1', 'c2']        # the folders make_class_tree wrote
    with pytest.raises(UserError):
        rec_info(str(tmp_path / 'missing.rec'))
    bad = tmp_path / 'bad'
    (tmp_path / 'bad.rec').write_bytes(b'x' * 10)
    (tmp_path / 'bad.idx').write_text('0\t999\n')
    with pytest.raises(UserError, match='corrupt'):
        rec_info(str(bad) + '.rec')


@pytest.mark.parametrize('ranks', [1, 3, 4])
def test_train_shards_cover_every_sample_equal_lengths_minimal_repeats(ranks):
    shards = [train_shard(NUM, 4, r, ranks, seed=5, epoch=2) for r in range(ranks)]
    assert len({len(s) for s in shards}) == 1 and len(shards[0]) % 4 == 0
    union = np.concatenate(shards)
    # Every sample is seen; the wrap-around padding repeats only the first
    # len(union) - NUM samples of the permutation, once each.
    counts = np.bincount(union, minlength=NUM)
    assert counts.min() == 1
    assert (counts == 2).sum() == len(union) - NUM and counts.max() <= 2
    other = train_shard(NUM, 4, 0, ranks, seed=5, epoch=3)
    assert not np.array_equal(shards[0], other)


def test_val_shards_partition_the_dataset_and_plans_pad_evenly():
    for ranks in (1, 2, 3, 7):
        parts = [list(val_shard(NUM, r, ranks)) for r in range(ranks)]
        assert sorted(sum(parts, [])) == list(range(NUM))       # disjoint and complete
        plans = [val_plan(NUM, 4, r, ranks) for r in range(ranks)]
        assert len({len(p) for p, _ in plans}) == 1             # same batches on every rank
        for (positions, valid), part in zip(plans, parts):
            real = [positions[i * 4 + j] for i, v in enumerate(valid) for j in range(v)]
            assert real == part


def test_part_bounds_match_mxnet(rec):
    info = rec_info(rec)
    for part in range(3):
        it = mx.io.ImageRecordIter(path_imgrec=rec, path_imgidx=rec[:-4] + '.idx',
                                   data_shape=(3, 32, 32), batch_size=1, num_parts=3,
                                   part_index=part, preprocess_threads=1)
        got = sum(1 for _ in it)
        begin, end = part_bounds(info.num_samples, part, 3)
        assert got == end - begin


@pytest.mark.parametrize('backend', ['rec', 'python'])
def test_train_loader_even_batches_and_reproducible(rec, backend):
    seen, lengths = [], set()
    for rank in range(3):
        loader = train_loader(rec, 4, input_size=32, rank=rank, num_ranks=3, seed=1,
                              num_workers=1, backend=backend)
        loader.set_epoch(4)
        first = labels_of(loader)
        lengths.add((len(loader), len(first), loader.num_samples))
        assert first[0][1].shape == (4, 3, 32, 32) and first[0][1].dtype == np.float32
        assert all(len(lab) == 4 for lab, _ in first)
        loader.set_epoch(4)
        again = labels_of(loader)
        assert all(np.array_equal(a[1], b[1]) and a[0] == b[0] for a, b in zip(first, again))
        loader.set_epoch(4, start_batch=1)
        skipped = labels_of(loader)
        assert len(skipped) == len(first) - 1 and np.array_equal(skipped[0][1], first[1][1])
        seen.extend(sum((lab for lab, _ in first), []))
    assert len(lengths) == 1
    assert set(seen) == {0.0, 1.0, 2.0}


def test_python_train_loader_independent_of_workers_and_epoch_changes(rec):
    def batches(workers, epoch):
        loader = train_loader(rec, 4, input_size=32, seed=3, num_workers=workers,
                              backend='python', auto_aug=True)
        loader.set_epoch(epoch)
        return labels_of(loader)
    one, two = batches(1, 0), batches(2, 0)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(one, two))
    assert not np.array_equal(one[0][1], batches(1, 1)[0][1])


def test_val_loader_counts_every_image_once(rec):
    labels = []
    for ranks in (1, 3):
        per_rank = []
        for rank in range(ranks):
            loader = eval_loader(rec, 5, eval_transform(crop_size=32), rank=rank,
                                 num_ranks=ranks, num_workers=1)
            got = labels_of(loader)
            per_rank.append(len(got))
            assert sum(len(lab) for lab, _ in got) == loader.num_samples
            labels.append(sum((lab for lab, _ in got), []))
        assert len(set(per_rank)) == 1
    assert sorted(labels[0]) == sorted(labels[1] + labels[2] + labels[3])
    assert len(labels[0]) == NUM


def test_augment_policies_change_images_reproducibly():
    img = photos()[1][:64, :64]
    for policy in (ImageNetPolicy(),):
        outs = [policy(img, np.random.RandomState(s)) for s in (0, 0, 1, 2, 3)]
        assert np.array_equal(outs[0], outs[1])
        assert any(not np.array_equal(img, o) for o in outs)
        assert all(o.shape == (64, 64, 3) and o.dtype == np.uint8 for o in outs)


class _Sign:
    """A stand-in RandomState whose sign draw (``rand() < 0.5``) is fixed."""

    def __init__(self, negative):
        self.negative = negative

    def rand(self):
        return 0.0 if self.negative else 1.0


def _pil_op(name, pil, level, negative):
    """The PIL operation our op ``name`` reproduces (expected values from PIL itself)."""
    from PIL import Image, ImageEnhance, ImageOps
    sign = -1 if negative else 1
    fill, w, h = (128, 128, 128), pil.size[0], pil.size[1]
    affine = {'ShearX': (1, sign * level * 0.3, 0, 0, 1, 0),
              'ShearY': (1, 0, 0, sign * level * 0.3, 1, 0),
              'TranslateX': (1, 0, sign * level * 150 / 331 * w, 0, 1, 0),
              'TranslateY': (1, 0, 0, 0, 1, sign * level * 150 / 331 * h)}
    if name in affine:
        return pil.transform(pil.size, Image.AFFINE, affine[name], Image.BILINEAR,
                             fillcolor=fill)
    if name == 'Rotate':
        return pil.rotate(sign * level * 30, Image.BILINEAR, fillcolor=fill)
    enhance = {'Color': ImageEnhance.Color, 'Contrast': ImageEnhance.Contrast,
               'Brightness': ImageEnhance.Brightness, 'Sharpness': ImageEnhance.Sharpness}
    if name in enhance:
        return enhance[name](pil).enhance(1 + sign * level * 0.9)
    return {'Posterize': lambda: ImageOps.posterize(pil, int(round(8 - 4 * level))),
            'Solarize': lambda: ImageOps.solarize(pil, int(round(256 - 256 * level))),
            'AutoContrast': lambda: ImageOps.autocontrast(pil),
            'Equalize': lambda: ImageOps.equalize(pil),
            'Invert': lambda: ImageOps.invert(pil)}[name]()


@pytest.mark.parametrize('name', ['ShearX', 'ShearY', 'TranslateX', 'TranslateY', 'Rotate',
                                  'Color', 'Contrast', 'Brightness', 'Sharpness', 'Posterize',
                                  'Solarize', 'AutoContrast', 'Equalize', 'Invert'])
def test_autoaugment_ops_compute_what_pil_computes(name):
    from PIL import Image
    from resnest.gluon.data.autoaugment import apply_op
    img = np.ascontiguousarray(photos()[0][100:220, 200:360])      # 120x160, real photo
    for level, negative in ((5 / 9, False), (1.0, True)):
        ours = apply_op(name, img, level, _Sign(negative)).astype(int)
        pil = np.asarray(_pil_op(name, Image.fromarray(img), level, negative)).astype(int)
        diff = np.abs(ours - pil)
        if name in ('Posterize', 'Solarize', 'AutoContrast', 'Equalize', 'Invert'):
            assert diff.max() == 0                 # lookup tables: exactly PIL's
        elif name in ('Color', 'Contrast', 'Brightness', 'Sharpness'):
            assert diff.max() <= 2                 # blends: rounding (and grey weights)
        else:                                      # resampling: sub-pixel centre conventions
            assert diff.mean() < 4 and np.percentile(diff, 90) < 12, diff.mean()


def test_autoaugment_in_a_box_is_the_box_of_the_whole_result():
    from resnest.gluon.data.autoaugment import IMAGENET_POLICY
    img = photos()[0][:240, :320]
    policy, warps = ImageNetPolicy(), ('Rotate', 'ShearX', 'TranslateX', 'TranslateY')
    for seed in range(4 * len(IMAGENET_POLICY)):
        box_rng = np.random.RandomState(1000 + seed)
        h, w = box_rng.randint(20, 241), box_rng.randint(20, 321)
        box = (box_rng.randint(0, 241 - h), box_rng.randint(0, 321 - w), h, w)
        whole = policy(img, np.random.RandomState(seed))
        part = policy(img, np.random.RandomState(seed), box)
        top, left = box[:2]
        diff = np.abs(part - whole[top:top + h, left:left + w].astype(int))
        names = [n for n, _, _ in IMAGENET_POLICY[np.random.RandomState(seed).randint(25)]]
        if not set(names) & set(warps):
            assert diff.max() == 0, names
        else:   # a warp of the box alone samples on OpenCV's 1/32-pixel grid from another
            assert (diff > 0).mean() < 0.02 and diff.max() <= 8, names   # origin


def test_bgr_input_gives_what_rgb_input_gives():
    from resnest.gluon.data.loaders import TrainTransform
    rgb = np.ascontiguousarray(photos()[0][:200, :300])
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    for seed in range(60):                        # every sub-policy, Color and Contrast too
        a = ImageNetPolicy()(rgb, np.random.RandomState(seed))
        b = ImageNetPolicy(bgr=True)(bgr, np.random.RandomState(seed))
        assert np.array_equal(a, b[:, :, ::-1])
    for jitter in (0.4, 0):
        t_rgb = TrainTransform(64, jitter, 0.1, ImageNetPolicy())
        t_bgr = TrainTransform(64, jitter, 0.1, ImageNetPolicy(bgr=True), bgr=True)
        for seed in range(5):
            diff = t_rgb(rgb, np.random.RandomState(seed)) - t_bgr(bgr,
                                                                   np.random.RandomState(seed))
            assert np.abs(diff).max() < 1e-4


def test_fused_color_jitter_lighting_normalize_equals_the_steps():
    from resnest.gluon.data.transforms import color_normalize_chw
    img = photos()[1][:48, :40]
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    grey = np.array([0.299, 0.587, 0.114])
    eigval = np.array([55.46, 4.794, 1.148])
    eigvec = np.array([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140],
                       [-0.5836, -0.6948, 0.4203]])
    for seed in range(6):
        rng = np.random.RandomState(seed)        # the steps one by one, in float64
        out = img.astype(np.float64)
        for op in rng.permutation(3):
            f = 1 + rng.uniform(-0.4, 0.4)
            if op == 0:
                out = out * f
            elif op == 1:
                out = out * f + (out @ grey).mean() * (1 - f)
            else:
                out = out * f + (out @ grey)[:, :, None] * (1 - f)
        out = np.clip(out, 0, 255)
        out = out + eigvec @ (rng.normal(0, 0.1, size=3) * eigval)
        want = ((out / 255 - mean) / std).transpose(2, 0, 1)
        got = color_normalize_chw(img, 0.4, 0.1, mean, std, np.random.RandomState(seed))
        assert got.dtype == np.float32 and got.shape == (3, 48, 40)
        assert np.abs(got - want).max() < 1e-3


def test_digits_tree_packs_and_feeds_a_32px_val_loader(tmp_path, capsys):
    script = os.path.join(ROOT, 'scripts', 'dataset', 'make_digits.py')
    make = runpy.run_path(script)['main']
    out = str(tmp_path / 'digits')
    assert make([out]) == 0
    files = {split: sum(len(f) for _, _, f in os.walk(os.path.join(out, split)))
             for split in ('train', 'val')}
    assert files == {'train': 1438, 'val': 359}
    assert make([out]) == 0 and 'already complete' in capsys.readouterr().out
    with pytest.raises(UserError, match='other settings'):
        make([out, '--size', '16'])
    pack = runpy.run_path(os.path.join(ROOT, 'scripts', 'dataset', 'im2rec.py'))['main']
    assert pack([os.path.join(out, 'val'), str(tmp_path / 'val'), '--no-progress']) == 0
    loader = eval_loader(str(tmp_path / 'val.rec'), 64, eval_transform(crop_size=32),
                         num_workers=1)
    counts = np.zeros(10)
    for data, label, valid in loader:
        assert data.shape[2:] == (32, 32)
        np.add.at(counts, label.asnumpy()[:valid].astype(int), 1)
    assert counts.sum() == 359 and counts.min() >= 34


def _damaged_copy(rec, dest, edit_rec=None, edit_idx=None):
    """A copy of ``rec``'s .rec/.idx under ``dest`` with the given edits; returns its .rec."""
    data = bytearray(open(rec, 'rb').read())
    lines = open(rec[:-4] + '.idx').read().splitlines(keepends=True)
    offsets = [int(line.split('\t')[1]) for line in lines]
    if edit_rec:
        edit_rec(data, offsets)
    open(dest + '.rec', 'wb').write(bytes(data))
    open(dest + '.idx', 'w').write(''.join(edit_idx(lines) if edit_idx else lines))
    return dest + '.rec', offsets


@pytest.mark.parametrize('backend', ['rec', 'python'])
def test_damaged_record_header_refused_at_start_naming_record_and_byte(rec, tmp_path, backend):
    def smash(data, offsets):
        data[offsets[7]:offsets[7] + 4] = b'\0\0\0\0'   # the 8th record's magic word
    bad, offsets = _damaged_copy(rec, str(tmp_path / 'smashed'), edit_rec=smash)
    key = int(open(rec[:-4] + '.idx').read().splitlines()[7].split('\t')[0])
    with pytest.raises(UserError) as err:
        train_loader(bad, 4, input_size=32, num_workers=1, backend=backend)
    msg = str(err.value)
    assert f'record {key} of the .idx' in msg and f'byte {offsets[7]}' in msg
    assert bad in msg and f'im2rec.py --check {bad[:-4]}' in msg
    with pytest.raises(UserError, match='no record starts'):
        eval_loader(bad, 4, eval_transform(crop_size=32), num_workers=1)


def test_index_that_misses_records_is_refused(rec, tmp_path):
    partial, offsets = _damaged_copy(rec, str(tmp_path / 'partial'),
                                     edit_idx=lambda lines: lines[:10])
    with pytest.raises(UserError, match=f'only up to byte {offsets[10]} .*every record'):
        rec_info(partial)
    holes, _ = _damaged_copy(rec, str(tmp_path / 'holes'),
                             edit_idx=lambda lines: lines[:3] + lines[4:])
    with pytest.raises(UserError, match=f'leaves out bytes {offsets[3]}..{offsets[4]}'):
        rec_info(holes)


class PidTransform:
    """Stands in for a transform: the image becomes the id of the process that made it."""

    def __call__(self, img, rng=None):
        return np.full((1, 2, 2), os.getpid(), np.float32)


def test_worker_processes_live_across_epochs_and_evaluations(rec):
    loader = eval_loader(rec, 4, PidTransform(), num_workers=2)
    pids = []
    for _ in range(3):
        pids.append({int(p) for data, _, _ in loader for p in data.asnumpy().ravel()})
    loader.set_epoch(1)
    pids.append({int(p) for data, _, _ in loader for p in data.asnumpy().ravel()})
    every = set().union(*pids)
    # the same two workers served every pass (which of them made which batch may vary)
    assert os.getpid() not in every and len(every) <= 2 and all(pids)
    loader.close()


def test_python_path_decode_failure_is_one_sentence_from_a_worker(rec, tmp_path):
    def smash(data, offsets):
        # record 6's JPEG start-of-image marker: the record parses but the image cannot decode
        pos = data.find(b'\xff\xd8', offsets[6])
        data[pos:pos + 4] = b'\0\0\0\0'
    bad, offsets = _damaged_copy(rec, str(tmp_path / 'soi'), edit_rec=smash)
    key = int(open(rec[:-4] + '.idx').read().splitlines()[6].split('\t')[0])
    for workers in (1, 2):
        loader = eval_loader(bad, 4, eval_transform(crop_size=32), num_workers=workers)
        with pytest.raises(UserError) as err:
            list(loader)
        msg = str(err.value)
        assert f'record {key} of {bad} (at byte {offsets[6]})' in msg
        assert f'im2rec.py --check {bad[:-4]}' in msg and '\n' not in msg
        loader.close()


def test_loader_workers_die_with_a_killed_trainer(rec):
    import subprocess
    import sys
    code = ('import sys, time\n'
            'from resnest.gluon.data import train_loader\n'
            f'loader = train_loader({rec!r}, 4, input_size=32, num_workers=2, '
            'backend="python")\n'
            'next(iter(loader))\n'
            'print("ready", flush=True)\n'
            'time.sleep(600)\n')
    proc = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.stdout.readline().strip() == 'ready'
    children = _descendants(proc.pid)
    assert len(children) >= 2                      # the workers (and a fork server)
    alive = kill_and_watch(proc, children)
    assert alive == []


def test_batches_left_unread_free_their_shared_memory(rec):
    import subprocess
    import sys
    code = ('from resnest.gluon.data import train_loader\n'
            f'loader = train_loader({rec!r}, 2, input_size=32, num_workers=2, '
            'backend="python")\n'
            'for _ in loader:\n'
            '    break\n'                              # batches in flight are never read
            'print(sum(d.shape[0] for d, _, _ in loader))\n')
    before = set(os.listdir('/dev/shm'))
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ, PYTHONPATH=ROOT))
    assert proc.returncode == 0 and proc.stdout.strip() == '22', proc.stderr[-2000:]
    # nothing left for the resource tracker to find and warn about, nothing left behind
    assert 'leaked' not in proc.stderr and 'resource_tracker' not in proc.stderr
    assert not {n for n in set(os.listdir('/dev/shm')) - before if n.startswith('psm_')}
