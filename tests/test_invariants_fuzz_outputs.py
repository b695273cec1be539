"""Property-based attacks (hypothesis) on the other two invariants: nothing a user has is
overwritten or mixed without --force (``utils/outputs.py``, ``utils/io.py``'s groups, through
``data/pack.py`` ``pack_records`` and the run folder of ``train/runner.py``), and every process
ends (a SIGTERM at a random moment of scripts/dataset/im2rec.py or of predict.py leaves no
process and no hidden temporary file). Profiles: tests/conftest.py.

Expected values: the tree as it was before (a hash of every path's kind, bytes and link
target, and of the user's files that links point at), the files the test wrote, /proc for
processes, and MXNet's own ``recordio`` reader for a finished pack."""
import os
import signal
import subprocess
import sys
import tempfile
import time
import types

import pytest
from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from _fuzz import crop, one_sentence, tree_state
from _procs import alive, descendants
from conftest import REPO
from resnest.gluon.utils.errors import UserError

pytestmark = pytest.mark.timeout(180)

THINGS = ("absent", "absent", "file", "folder", "link", "dangling", "fifo")


def _put(path, thing, outside):
    """Make ``thing`` at ``path``; a link points at a user's file in ``outside``."""
    if thing == "file":
        with open(path, "wb") as f:
            f.write(b"the user's own " + os.path.basename(path).encode())
    elif thing == "folder":
        os.makedirs(path)
        with open(os.path.join(path, "inside"), "w") as f:
            f.write("kept")
    elif thing == "link":
        target = os.path.join(outside, f"target-{os.path.basename(path)}")
        with open(target, "w") as f:
            f.write("a user's file a link points at")
        os.symlink(target, path)
    elif thing == "dangling":
        os.symlink(os.path.join(outside, "nothing-here"), path)
    elif thing == "fifo":
        os.mkfifo(path)


def _image_tree(root):
    """Two classes of two 16x16 PNG crops of a real photo; returns the count."""
    for label in range(2):
        os.makedirs(os.path.join(root, f"c{label}"))
        for i in range(2):
            Image.fromarray(crop("chelsea", 40 * i, 60 * label, 16, 16)).save(
                os.path.join(root, f"c{label}", f"{i}.png"))
    return 4


PACK_NAMES = (".rec", ".idx", ".lst", ".skipped.tsv", ".classes.txt")


def _only(**things):
    """A ``things`` dict of the pack test: these, everything else absent."""
    return {n: things.get(n.strip(".").replace(".", "_"), "absent")
            for n in PACK_NAMES + (".lock",)}


@given(st.fixed_dictionaries({n: st.sampled_from(THINGS) for n in PACK_NAMES + (".lock",)}),
       st.booleans())
# found by hypothesis: a user's PREFIX.classes.txt (.lst, .skipped.tsv) was replaced without
# --force (only .rec/.idx were checked); a folder there left a half-renamed group behind an
# error naming the .rec; a link at .PREFIX.lock had its target truncated by the lock
@example(_only(classes_txt="file"), False)
@example(_only(classes_txt="folder"), False)
@example(_only(lock="link"), False)
@example(_only(rec="file", idx="folder"), True)
def test_pack_outputs_are_refused_unchanged_or_replaced_whole(tmp_path, things, force):
    from resnest.gluon.data.pack import PackOptions, pack_records, plan_image_folder
    from resnest.gluon.data.validate import checked_index
    base = tempfile.mkdtemp(dir=tmp_path)
    images, out, outside = (os.path.join(base, n) for n in ("images", "out", "outside"))
    count = _image_tree(images)
    os.makedirs(out)
    os.makedirs(outside)
    prefix = os.path.join(out, "p")
    for suffix, thing in things.items():
        _put(os.path.join(out, ".p.lock") if suffix == ".lock" else prefix + suffix, thing,
             outside)
    before_out, before_outside = tree_state(out, [".p.lock"]), tree_state(outside)
    entries, classes = plan_image_folder(images)
    try:
        result = pack_records(images, entries, prefix, PackOptions(encoding=".png"),
                              classes=classes, force=force)
    except UserError as err:
        assert one_sentence(err)
        assert tree_state(outside) == before_outside, "a refusal changed a user's file"
        assert tree_state(out, [".p.lock"]) == before_out, f"refused ({err}), changed things"
        return
    assert tree_state(outside) == before_outside, "a link's target was written through"
    existed = [s for s in PACK_NAMES if things[s] != "absent"]
    assert force or not existed, f"replaced the user's {existed} without --force"
    assert result.packed == count
    entries, info = checked_index(prefix + ".rec")
    assert info.num_samples == count and info.class_names == classes
    assert not [n for n in os.listdir(out) if n.endswith(".tmp")]


CACHE_NAMES = PACK_NAMES + (".pack.json",)


@given(st.fixed_dictionaries({n: st.sampled_from(THINGS + ("ours",)) for n in CACHE_NAMES}))
# found by hypothesis: a FIFO named <folder>.pack.json hung the cache for ever (open() of it)
@example(dict(dict.fromkeys(CACHE_NAMES, "absent"), **{".pack.json": "fifo"}))
def test_the_pack_cache_never_takes_what_it_did_not_write(tmp_path, things):
    """data/packcache.py: ``<folder>.rec`` and its side-cars are the cache's only when its
    ``.pack.json`` says so; anything else there is the user's and stays as it was."""
    from resnest.gluon.data.packcache import cached_pack
    from resnest.gluon.data.validate import checked_index
    base = tempfile.mkdtemp(dir=tmp_path)
    images, outside = os.path.join(base, "images"), os.path.join(base, "outside")
    count = _image_tree(images)
    os.makedirs(outside)
    first = cached_pack(images, shuffle=False, log=lambda msg: None)   # the cache's own pack
    ours = {n: open(images + n, "rb").read() for n in CACHE_NAMES}
    for n in CACHE_NAMES:
        os.remove(images + n)
    for n, thing in things.items():
        if thing == "ours":
            with open(images + n, "wb") as f:
                f.write(ours[n])
        else:
            _put(images + n, thing, outside)
    before, before_outside = tree_state(base, ["images"]), tree_state(outside)
    try:
        rec = cached_pack(images, shuffle=False, log=lambda msg: None)
    except UserError as err:
        assert one_sentence(err)
        assert tree_state(base, ["images"]) == before and tree_state(outside) == \
            before_outside, f"refused ({err}) but changed things"
        return
    assert rec == first and tree_state(outside) == before_outside
    if things[".pack.json"] != "ours":
        users = [n for n in CACHE_NAMES if things[n] not in ("absent", "ours")]
        assert not users, f"the cache replaced the user's {users}"
    # found by the nightly profile: a .rec/.idx/.classes.txt swapped under an intact
    # .pack.json was reused (the description named the folder's state, not the group's)
    entries, info = checked_index(rec)
    assert info.num_samples == count and info.class_names == ["c0", "c1"]


# -- the run folder of train/runner.py --

RUN_NAMES = ("train.log", "metrics.jsonl", "imagenet-resnest_tiny-3.json",
             "imagenet-resnest_tiny-3.params", "notes.txt", ".lock")


@given(st.sampled_from(["folder", "folder", "absent", "file"]),
       st.fixed_dictionaries({n: st.sampled_from(THINGS) for n in RUN_NAMES}), st.booleans())
# found by hypothesis: --force over a folder named train.log died in a traceback
# (IsADirectoryError) after removing some of the earlier run's files
@example("folder", dict(dict.fromkeys(RUN_NAMES, "absent"), **{"train.log": "folder",
                                                                "metrics.jsonl": "file"}), True)
@example("folder", dict(dict.fromkeys(RUN_NAMES, "absent"), **{".lock": "link"}), False)
def test_a_run_folder_is_refused_unchanged_or_claimed_cleanly(tmp_path, save_dir_is, things,
                                                               force):
    from resnest.gluon.train.runner import _claim_folder, run_files
    from resnest.gluon.utils.distributed import Dist
    base = tempfile.mkdtemp(dir=tmp_path)
    save_dir, outside = os.path.join(base, "run"), os.path.join(base, "outside")
    os.makedirs(outside)
    if save_dir_is == "folder":
        os.makedirs(save_dir)
        for name, thing in things.items():
            _put(os.path.join(save_dir, name), thing, outside)
    else:
        _put(save_dir, save_dir_is, outside)
    before_base, before_outside = tree_state(base, [".lock"]), tree_state(outside)
    earlier = run_files(save_dir) if os.path.isdir(save_dir) else []
    cfg = types.SimpleNamespace(save_dir=save_dir, resume=False, resume_params=None,
                                resume_states=None, force=force, logging_file="train.log")
    dist = Dist(rank=0, size=1, local_rank=0, ctx=None, is_root=True)
    try:
        lock = _claim_folder(cfg, dist, log=lambda msg: None)
    except UserError as err:
        assert one_sentence(err)
        assert tree_state(outside) == before_outside, "a refusal changed a user's file"
        assert tree_state(base, [".lock"]) == before_base, f"refused ({err}), changed things"
        return
    try:
        assert tree_state(outside) == before_outside, "a link's target was written through"
        assert force or not earlier, f"took a folder holding an earlier run {earlier}"
        assert run_files(save_dir) == [], "an earlier run's files are still there"
        if things["notes.txt"] != "absent" and save_dir_is == "folder":
            assert os.path.lexists(os.path.join(save_dir, "notes.txt")), "removed a user file"
    finally:
        lock.release()


# -- every process ends: a SIGTERM at a random moment --

IM2REC = os.path.join(REPO, "scripts", "dataset", "im2rec.py")
PREDICT = os.path.join(REPO, "scripts", "gluon", "predict.py")
FEW = max(2, min(20, settings.default.max_examples // 5))   # subprocess runs: seconds each
# predict.py imports MXNet and loads a model (15-30 s a run on 2 loaded cores): under `ci`
# only its explicit examples run, `nightly` draws more
PREDICT_PHASES = (Phase.explicit,) if FEW <= 2 else tuple(Phase)


MOMENTS = st.tuples(st.sampled_from(["start", "work"]), st.floats(0.0, 1.0))


def _terminate_at(argv, moment, cwd):
    """Run ``argv`` and SIGTERM it (if still running) at ``moment``: ``('start', t)`` is t
    seconds after it started, ``('work', t)`` t seconds after its worker processes appeared
    (the stderr filter of run_cli is its first child). Returns (exit code, every pid seen
    below it, the ones still alive 15 s after it ended)."""
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    phase, delay = moment
    seen, start = set(), time.time()
    while phase == "work" and proc.poll() is None and time.time() - start < 60:
        seen.update(descendants(proc.pid))
        if len(seen) >= 3:
            break
        time.sleep(0.01)
    start = time.time()
    while time.time() - start < delay and proc.poll() is None:
        seen.update(descendants(proc.pid))
        time.sleep(0.02)
    if proc.poll() is None:
        seen.update(descendants(proc.pid))
        proc.send_signal(signal.SIGTERM)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"{os.path.basename(argv[1])} did not end within 60 s of a SIGTERM")
    deadline = time.time() + 15
    while time.time() < deadline and any(alive(p) for p in seen):
        time.sleep(0.1)
    left = [p for p in seen if alive(p)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert "Traceback" not in err, err
    return proc.returncode, seen, left


def _hidden_leftovers(folder):
    return [n for n in os.listdir(folder) if n.startswith(".")]


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory):
    """Two classes of 24 real 64x64 photo crops (PNG), enough for a pack of about a second."""
    root = str(tmp_path_factory.mktemp("photos") / "images")
    for label in range(2):
        os.makedirs(os.path.join(root, f"c{label}"))
        for i in range(24):
            Image.fromarray(crop("astronaut", 17 * i, 90 * label, 64, 64)).save(
                os.path.join(root, f"c{label}", f"{i}.png"))
    return root


@given(MOMENTS)
@example(("work", 0.05))
@settings(max_examples=FEW)
def test_a_sigtermed_pack_leaves_no_process_and_no_part(tmp_path, photo_folder, moment):
    from resnest.gluon.data.validate import checked_index
    out = tempfile.mkdtemp(dir=tmp_path)
    prefix = os.path.join(out, "p")
    code, seen, left = _terminate_at([sys.executable, IM2REC, photo_folder, prefix, "--workers",
                                      "2", "--no-progress", "--encoding", ".png"], moment, out)
    assert left == [], f"processes {left} outlived the packer (SIGTERM at {moment})"
    assert _hidden_leftovers(out) == [], f"stray files after a SIGTERM at {moment}"
    made = sorted(os.listdir(out))
    if code == 0 or made:          # done, or the signal came after the group's last rename
        assert made == ["p" + s for s in sorted(PACK_NAMES)], f"a killed pack left {made}"
        assert checked_index(prefix + ".rec")[1].num_samples == 48


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A random 2-class resnest_tiny written as train.py writes a checkpoint."""
    import mxnet as mx
    from resnest.gluon import get_model
    from resnest.gluon.checkpoint import CheckpointRecord, write_checkpoint
    net = get_model("resnest_tiny", classes=2)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    record = CheckpointRecord(model="resnest_tiny", epoch=0, class_names=["c0", "c1"],
                              eval={"crop_size": 32, "crop_ratio": 1.0})
    return write_checkpoint(str(tmp_path_factory.mktemp("ckpt")), record,
                            net.save_parameters)["params"]


@given(MOMENTS)
# found by hypothesis: a SIGTERM while predict's pool was starting a worker left a forkserver
# child that found its parent's semaphores gone and printed a traceback (workers are now
# started with termination deferred, utils/processes.py)
@example(("work", 0.05))
@example(("start", 0.0))
@settings(max_examples=FEW, phases=PREDICT_PHASES)
def test_a_sigtermed_predict_leaves_no_process_and_no_part(tmp_path, photo_folder,
                                                           tiny_checkpoint, moment):
    out = tempfile.mkdtemp(dir=tmp_path)
    code, seen, left = _terminate_at([sys.executable, PREDICT, photo_folder, "--model",
                                      "resnest_tiny", "--resume", tiny_checkpoint, "-j", "2",
                                      "--batch-size", "4", "--backend", "mxnet", "--json",
                                      os.path.join(out, "rows.json")], moment, out)
    assert left == [], f"processes {left} outlived predict (SIGTERM at {moment})"
    assert _hidden_leftovers(out) == [], f"stray files after a SIGTERM at {moment}"
    if code != 0:
        assert os.listdir(out) == [], "a killed predict left a partial --json"
