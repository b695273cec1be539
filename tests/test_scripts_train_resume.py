"""Training that cannot silently go wrong: class names, checkpoints before evaluation,
mid-epoch checkpoints, the resume point across ranks, four ranks sharing an epoch.

Runs are real: scripts/gluon/train.py, under ``horovodrun --gloo`` where ranks matter, on the
real digits packed by our packer (or records written with MXNet's own writer)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import mxnet as mx
import numpy as np
import pytest

from conftest import REPO

PY = sys.executable
TRAIN = os.path.join(REPO, "scripts", "gluon", "train.py")
# train.py with the test-only hooks (faults, traces) installed: tests/_train_hooks.py
HOOKED = [os.path.join(REPO, "tests", "_train_hooks.py"), TRAIN]
HOROVODRUN = os.path.join(os.path.dirname(PY), "horovodrun")
TINY = ["--model", "resnest_tiny", "--input-size", "32", "--crop-ratio", "1.0",
        "--data-nthreads", "1", "--no-progress", "--log-interval", "1", "--lr", "0.05"]


def _env(**extra):
    env = dict(os.environ, OMP_NUM_THREADS="1", **extra)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _train(*args, ranks=1, env=None, check=True, timeout=300):
    cmd = [PY, *HOOKED, *args]
    if ranks > 1:
        cmd = [HOROVODRUN, "-np", str(ranks), "--gloo", *cmd]
    proc = subprocess.run(cmd, env=env or _env(), capture_output=True, text=True,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def _params(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}


def _same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _write_rec(prefix, images, labels):
    """Records with MXNet's own writer (no .classes.txt): ``labels[i]`` for image ``i``."""
    writer = mx.recordio.MXIndexedRecordIO(prefix + ".idx", prefix + ".rec", "w")
    for i, (img, label) in enumerate(zip(images, labels)):
        header = mx.recordio.IRHeader(0, float(label), i, 0)
        writer.write_idx(i, mx.recordio.pack_img(header, img[:, :, ::-1], quality=95))
    writer.close()
    return prefix + ".rec"


@pytest.fixture(scope="module")
def digits_rec(tmp_path_factory):
    """The real digits at 32x32, packed with our packer (class names in .classes.txt)."""
    from resnest.gluon.data import pack_records, plan_image_folder, write_digits
    root = tmp_path_factory.mktemp("digits")
    write_digits(str(root / "images"), size=32)
    out = {}
    for split in ("train", "val"):
        folder = str(root / "images" / split)
        entries, classes = plan_image_folder(folder, shuffle=split == "train")
        pack_records(folder, entries, str(root / split), classes=classes)
        out[split] = str(root / f"{split}.rec")
    out["root"] = root
    return out


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """96 real digits whose label is their own index (96 classes): the labels a rank trains
    on say exactly which samples it saw."""
    from sklearn.datasets import load_digits
    from resnest.gluon.data.digits import digit_image
    root = tmp_path_factory.mktemp("indexed")
    digits = load_digits()
    images = [digit_image(digits.data[i], 32)[:, :, ::-1] for i in range(96)]
    return _write_rec(str(root / "all"), images, range(96))


def test_class_names_travel_into_the_checkpoint_and_a_missing_val_class_is_refused(
        digits_rec, tmp_path):
    out = tmp_path / "run"
    _train("--rec-train", digits_rec["train"], "--rec-val", digits_rec["val"], "--save-dir",
           str(out), "--num-epochs", "1", "--batch-size", "64", *TINY)
    meta = json.loads((out / "imagenet-resnest_tiny-0.json").read_text())
    assert meta["class_names"] == [str(d) for d in range(10)]
    # A validation set packed from folders that lack the class "3": its labels shift.
    from resnest.gluon.data import pack_records, plan_image_folder
    val = tmp_path / "val-without-3"
    shutil.copytree(digits_rec["root"] / "images" / "val", val)
    shutil.rmtree(val / "3")
    entries, classes = plan_image_folder(str(val))
    pack_records(str(val), entries, str(tmp_path / "v"), classes=classes)
    proc = _train("--rec-train", digits_rec["train"], "--rec-val", str(tmp_path / "v.rec"),
                  "--save-dir", str(tmp_path / "bad"), "--num-epochs", "1", *TINY,
                  check=False)
    assert proc.returncode == 2 and "missing in validation: 3" in proc.stderr
    assert proc.stderr.count("error:") == 1 and "Traceback" not in proc.stderr


def test_the_checkpoint_is_written_before_a_failing_evaluation(digits_rec, tmp_path):
    """A validation record whose image bytes are garbage (headers intact) fails evaluation;
    the epoch's checkpoint already exists and the error is one sentence."""
    data = bytearray(open(digits_rec["val"], "rb").read())
    offsets = [int(line.split("\t")[1]) for line in open(digits_rec["val"][:-4] + ".idx")]
    start = offsets[5] + 8 + 24                    # record header + image header of record 5
    data[start:start + 200] = b"\0" * 200
    bad = tmp_path / "val.rec"
    bad.write_bytes(bytes(data))
    for ext in (".idx", ".classes.txt"):
        shutil.copy(digits_rec["val"][:-4] + ext, tmp_path / ("val" + ext))
    out = tmp_path / "run"
    proc = _train("--rec-train", digits_rec["train"], "--rec-val", str(bad), "--save-dir",
                  str(out), "--num-epochs", "1", "--batch-size", "64", *TINY, check=False)
    assert proc.returncode == 2 and "val.rec" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert (out / "imagenet-resnest_tiny-0.json").is_file()


def test_a_mid_epoch_kill_9_on_two_ranks_resumes_bit_identically(digits_rec, tmp_path):
    args = ["--rec-train", digits_rec["train"], "--rec-val", digits_rec["val"], *TINY,
            "--num-epochs", "2", "--batch-size", "32", "--mixup", "--label-smoothing",
            "--save-interval-steps", "5", "--save-frequency", "1", "--eval-frequency", "2",
            "--seed", "4"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    _train(*args, "--save-dir", str(straight), ranks=2)
    cmd = [HOROVODRUN, "-np", "2", "--gloo", PY, TRAIN, *args, "--save-dir", str(killed)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None \
            and not list(killed.glob("imagenet-resnest_tiny-1-step*.json")):
        time.sleep(0.05)
    time.sleep(0.5)                                          # a few steps past the checkpoint
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # One mid-epoch checkpoint, or two when the kill came between writing the next one and
    # removing the previous one (a save is complete before the old one goes): the newest.
    steps = sorted(int(p.name.rsplit("step", 1)[1][:-len(".json")])
                   for p in killed.glob("imagenet-resnest_tiny-1-step*.json"))
    assert len(steps) in (1, 2) and steps[-1] - steps[0] in (0, 5), steps
    assert not (killed / "imagenet-resnest_tiny-1.json").exists()
    step = steps[-1]
    assert step % 5 == 0
    resumed = _train(*args, "--save-dir", str(killed), "--resume", ranks=2)
    assert f"(from step {step})" in resumed.stdout + resumed.stderr
    a = _params(straight / "imagenet-resnest_tiny-1.params")
    b = _params(killed / "imagenet-resnest_tiny-1.params")
    assert _same(a, b), "weights differ after a mid-epoch resume"
    # Only the newest mid-epoch checkpoint is kept beside the epoch checkpoints.
    assert not list(killed.glob("*-step5.*")) and not list(killed.glob("*-1-step*"))


@pytest.mark.parametrize("backend", ["rec", "python"])
def test_four_ranks_share_every_epoch_exactly_and_agree(indexed, tmp_path, backend):
    trace = tmp_path / "trace"
    trace.mkdir()
    out = tmp_path / "run"
    _train("--rec-train", indexed, "--rec-val", indexed, "--save-dir", str(out), *TINY,
           "--num-epochs", "2", "--batch-size", "8", "--loader-backend", backend,
           "--dropblock-prob", "0", ranks=4, env=_env(RESNEST_TEST_TRACE=str(trace)),
           timeout=600)
    seen = {}
    for rank in range(4):
        for line in (trace / f"rank{rank}.txt").read_text().splitlines():
            epoch, _, *labels = map(int, line.split())
            seen.setdefault(epoch, []).extend(labels)
    # 96 samples, 4 ranks x 8 per step: 3 steps, every sample exactly once per epoch.
    assert sorted(seen) == [0, 1] and all(sorted(v) == list(range(96)) for v in seen.values())
    epochs = [json.loads(line) for line in open(out / "metrics.jsonl")
              if '"kind": "epoch"' in line]
    assert [e["val_samples"] for e in epochs if e["top1"] is not None] == [96, 96]
    ranks = [_params(trace / f"rank{r}.params") for r in range(4)]
    # Weights, optimizer-driven values and averaged BN statistics: one model on every rank.
    assert all(_same(ranks[0], other) for other in ranks[1:])
    means = [k for k in ranks[0] if k.endswith("running_mean")]
    assert means and any(np.abs(ranks[0][k]).sum() > 0 for k in means)


_LAUNCH = """import os, runpy, sys
os.chdir(sys.argv[1] if os.environ.get("HOROVOD_RANK", "0") == "0" else sys.argv[2])
sys.argv = sys.argv[3:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_resume_point_is_rank_0s_and_a_rank_that_sees_another_file_stops(digits_rec, tmp_path):
    """Each rank has its own working folder (node-local disks) and a relative --save-dir:
    rank 1 holds an older copy of the run. Resuming stops with one sentence naming rank 1."""
    args = ["--rec-train", digits_rec["train"], "--rec-val", digits_rec["val"], *TINY,
            "--batch-size", "64", "--save-dir", "run", "--save-frequency", "1"]
    node0, node1 = tmp_path / "node0", tmp_path / "node1"
    node0.mkdir()
    node1.mkdir()
    launch = tmp_path / "launch.py"
    launch.write_text(_LAUNCH)

    def run(*extra, check=True):
        cmd = [HOROVODRUN, "-np", "2", "--gloo", PY, str(launch), str(node0), str(node1),
               TRAIN, *args, *extra]
        proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
        assert not check or proc.returncode == 0, proc.stderr[-3000:]
        return proc
    run("--num-epochs", "1")
    shutil.copytree(node0 / "run", node1 / "run")       # rank 1's disk lags one epoch behind
    run("--num-epochs", "2", "--resume")
    proc = run("--num-epochs", "3", "--resume", check=False)
    assert proc.returncode != 0
    assert "rank(s) 1 cannot read the checkpoint" in proc.stderr
    assert "imagenet-resnest_tiny-1.params" in proc.stderr


def test_resume_onto_another_rank_count(digits_rec, tmp_path):
    """2 ranks -> 1 (and back): refused without --resume-override; with it, training goes on
    from the epoch checkpoint with the new global LR (LR x workers)."""
    args = ["--rec-train", digits_rec["train"], "--rec-val", digits_rec["val"], *TINY,
            "--batch-size", "64", "--save-dir", str(tmp_path / "run"), "--save-frequency", "1"]
    _train(*args, "--num-epochs", "1", ranks=2)
    proc = _train(*args, "--num-epochs", "2", "--resume", check=False)
    assert proc.returncode == 2 and "workers 2 -> 1" in proc.stderr
    _train(*args, "--num-epochs", "2", "--resume", "--resume-override")
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (cfg["workers"], cfg["start_epoch"], cfg["global_lr"]) == (1, 1, 0.05)
    _train(*args, "--num-epochs", "3", "--resume", "--resume-override", ranks=2)
    cfg = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (cfg["workers"], cfg["start_epoch"], cfg["global_lr"]) == (2, 2, 0.1)
    epochs = [json.loads(line)["epoch"] for line in open(tmp_path / "run" / "metrics.jsonl")
              if '"kind": "epoch"' in line]
    assert epochs == [0, 1, 2]
