"""scripts/dataset/im2rec.py end to end: --check names the first bad record and which file is
wrong, --list-only / --lst, exit 2 and one ``error:`` line for bad input, an existing prefix
refused without --force, a read-only folder, and a killed packer or worker leaving neither a
process nor a finished-looking output. (The packer itself: test_data_pack.py.)"""
import os
import runpy
import signal
import subprocess
import sys
import time

import pytest

mx = pytest.importorskip('mxnet')

from _procs import descendants as _descendants, kill_and_watch  # noqa: E402
from _images import make_class_tree, make_hostile_tree, with_flipped_bytes  # noqa: E402
from _records import damaged_copy, keys, offsets, read_all  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, 'scripts', 'dataset', 'im2rec.py')


def im2rec(*argv):
    """The script's exit code for ``argv``, as from the command line (errors included)."""
    from resnest.gluon.utils.cli import run_cli
    with pytest.raises(SystemExit) as exit_info:
        run_cli(runpy.run_path(SCRIPT)['main'], list(argv))
    return exit_info.value.code


def test_check_mode_accepts_good_and_names_first_bad_record(awkward_pack, tmp_path, capsys):
    _, _, _, prefix = awkward_pack
    assert im2rec('--check', prefix) == 0
    def smash(data, starts):
        data[starts[3]:starts[3] + 4] = b'XXXX'      # destroy the 4th record's magic
    damaged = damaged_copy(prefix, str(tmp_path / 'damaged'), edit_rec=smash)
    assert im2rec('--check', damaged) == 1
    err = capsys.readouterr().err
    assert f'at byte {offsets(prefix)[3]}' in err and 'Traceback' not in err


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


def test_user_errors_are_one_sentence(tmp_path, capsys):
    assert im2rec(str(tmp_path / 'missing'), str(tmp_path / 'x')) == 2
    assert im2rec('--check', str(tmp_path / 'nothing')) == 2
    err = capsys.readouterr().err
    assert err.count('error:') == 2 and 'Traceback' not in err


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
    return make_hostile_tree(tmp_path_factory.mktemp('hostile') / 'images')


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


def test_check_decodes_every_image_with_warnings_as_errors(awkward_pack, tmp_path, capsys):
    _, _, _, prefix = awkward_pack
    starts, key = offsets(prefix), keys(prefix)[4]

    def flip(data, starts):
        middle = (starts[4] + starts[5]) // 2        # inside the 5th record's JPEG scan
        data[:] = with_flipped_bytes(bytes(data), middle)
    damaged = damaged_copy(prefix, str(tmp_path / 'flipped'), edit_rec=flip)
    assert im2rec('--check', damaged) == 1
    err = capsys.readouterr().err
    assert f'{damaged}.rec is damaged: 1 of its {len(starts)} images' in err
    assert f'record {key} at byte {starts[4]}' in err and 'Corrupt JPEG' in err


def test_check_says_the_idx_misses_records(awkward_pack, tmp_path, capsys):
    _, _, _, prefix = awkward_pack
    starts = offsets(prefix)
    partial = damaged_copy(prefix, str(tmp_path / 'partial'), edit_idx=lambda ls: ls[:5])
    assert im2rec('--check', partial) == 1
    err = capsys.readouterr().err
    assert f'{partial}.idx is wrong' in err and 'reads cleanly' in err
    assert f'covers 5 of the {len(starts)} records' in err and f'byte {starts[5]}' in err
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
