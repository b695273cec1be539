"""Training that cannot silently go wrong: a validation set missing a class, checkpoints
before evaluation, mid-epoch checkpoints, the resume point across ranks and onto another rank
count, four ranks sharing an epoch.

Runs are real: scripts/gluon/train.py, under ``horovodrun --gloo`` where ranks matter, on the
suite's real digits (conftest.digits, packed by our packer) or on records written with MXNet's
own writer; the uninterrupted 2-rank run is the shared reference run (tests/_runs.py)."""
import json
import os
import shutil
import signal
import time

import mxnet as mx
import numpy as np
import pytest

from _records import damaged_copy
from _runs import TINY, TWO_RANKS, data, env, epochs, params, same, start, stop, train

LOG = [*TINY, "--log-interval", "1", "--lr", "0.05"]


def _write_rec(prefix, images, labels):
    """Records with MXNet's own writer (no .classes.txt): ``labels[i]`` for image ``i``."""
    writer = mx.recordio.MXIndexedRecordIO(prefix + ".idx", prefix + ".rec", "w")
    for i, (img, label) in enumerate(zip(images, labels)):
        header = mx.recordio.IRHeader(0, float(label), i, 0)
        writer.write_idx(i, mx.recordio.pack_img(header, img[:, :, ::-1], quality=95))
    writer.close()
    return prefix + ".rec"


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


def test_a_validation_set_missing_a_class_is_refused(digits, tmp_path):
    """A validation set packed from folders that lack the class "3": its labels shift, and
    the run stops before its first step. (That the class names travel into the checkpoint:
    test_scripts_train.py, on the 2-rank reference run.)"""
    from resnest.gluon.data import pack_records, plan_image_folder
    val = tmp_path / "val-without-3"
    shutil.copytree(digits.val, val)
    shutil.rmtree(val / "3")
    entries, classes = plan_image_folder(str(val))
    pack_records(str(val), entries, str(tmp_path / "v"), classes=classes)
    proc = train("--rec-train", digits.train_rec, "--rec-val", str(tmp_path / "v.rec"),
                 "--save-dir", str(tmp_path / "bad"), "--num-epochs", "1", *LOG, check=False)
    assert proc.returncode == 2 and "missing in validation: 3" in proc.stderr
    assert proc.stderr.count("error:") == 1 and "Traceback" not in proc.stderr


def test_the_checkpoint_is_written_before_a_failing_evaluation(digits, tmp_path):
    """A validation record whose image bytes are garbage (headers intact) fails evaluation;
    the epoch's checkpoint already exists and the error is one sentence."""
    def garbage(data, starts):
        start = starts[5] + 8 + 24                 # record header + image header of record 5
        data[start:start + 200] = b"\0" * 200
    bad = damaged_copy(digits.val_rec[:-4], str(tmp_path / "val"), edit_rec=garbage,
                       side_cars=(".classes.txt",)) + ".rec"
    out = tmp_path / "run"
    proc = train("--rec-train", digits.train_rec, "--rec-val", bad, "--save-dir", str(out),
                 "--num-epochs", "1", "--batch-size", "64", *LOG, check=False)
    assert proc.returncode == 2 and "val.rec" in proc.stderr, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert (out / "imagenet-resnest_tiny-0.json").is_file()


def test_a_mid_epoch_kill_9_on_two_ranks_resumes_bit_identically(digits, reference_runs,
                                                                 tmp_path):
    straight = reference_runs.get(*data(digits), *TWO_RANKS, ranks=2)
    killed = tmp_path / "killed"
    proc = start(*data(digits), *TWO_RANKS, "--save-dir", killed, ranks=2)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None \
            and not list(killed.glob("imagenet-resnest_tiny-1-step*.json")):
        time.sleep(0.05)
    time.sleep(0.5)                                          # a few steps past the checkpoint
    stop(proc, signal.SIGKILL)
    # One mid-epoch checkpoint, or two when the kill came between writing the next one and
    # removing the previous one (a save is complete before the old one goes): the newest.
    steps = sorted(int(p.name.rsplit("step", 1)[1][:-len(".json")])
                   for p in killed.glob("imagenet-resnest_tiny-1-step*.json"))
    assert len(steps) in (1, 2) and steps[-1] - steps[0] in (0, 5), steps
    assert not (killed / "imagenet-resnest_tiny-1.json").exists()
    step = steps[-1]
    assert step % 5 == 0
    resumed = train(*data(digits), *TWO_RANKS, "--save-dir", killed, "--resume", ranks=2)
    assert f"(from step {step})" in resumed.stdout + resumed.stderr
    name = "imagenet-resnest_tiny-1.params"
    assert same(params(os.path.join(straight, name)), params(killed / name)), \
        "weights differ after a mid-epoch resume"
    assert epochs(straight)[-1]["top1"] == epochs(killed)[-1]["top1"]
    # Only the newest mid-epoch checkpoint is kept beside the epoch checkpoints, and none once
    # the run has ended.
    assert not list(killed.glob("*-step*"))


@pytest.mark.parametrize("backend", ["rec", "python"])
def test_four_ranks_share_every_epoch_exactly_and_agree(indexed, tmp_path, backend):
    trace = tmp_path / "trace"
    trace.mkdir()
    out = tmp_path / "run"
    train("--rec-train", indexed, "--rec-val", indexed, "--save-dir", str(out), *LOG,
          "--num-epochs", "2", "--batch-size", "8", "--loader-backend", backend,
          "--dropblock-prob", "0", ranks=4, run_env=env(RESNEST_TEST_TRACE=str(trace)),
          timeout=600)
    seen = {}
    for rank in range(4):
        for line in (trace / f"rank{rank}.txt").read_text().splitlines():
            epoch, _, *labels = map(int, line.split())
            seen.setdefault(epoch, []).extend(labels)
    # 96 samples, 4 ranks x 8 per step: 3 steps, every sample exactly once per epoch.
    assert sorted(seen) == [0, 1] and all(sorted(v) == list(range(96)) for v in seen.values())
    assert [e["val_samples"] for e in epochs(out) if e["top1"] is not None] == [96, 96]
    ranks = [params(trace / f"rank{r}.params") for r in range(4)]
    # Weights, optimizer-driven values and averaged BN statistics: one model on every rank.
    assert all(same(ranks[0], other) for other in ranks[1:])
    means = [k for k in ranks[0] if k.endswith("running_mean")]
    assert means and any(np.abs(ranks[0][k]).sum() > 0 for k in means)


_LAUNCH = """import os, runpy, sys
os.chdir(sys.argv[1] if os.environ.get("HOROVOD_RANK", "0") == "0" else sys.argv[2])
sys.argv = sys.argv[3:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_resume_point_is_rank_0s_and_a_rank_that_sees_another_file_stops(digits,
                                                                         reference_runs,
                                                                         tmp_path):
    """Each rank has its own working folder (node-local disks) and a relative --save-dir: the
    run continues when both hold the 2-rank reference run; once rank 1's copy lags behind
    (rank 0 alone wrote the next epoch), resuming stops with one sentence naming rank 1."""
    node0, node1 = tmp_path / "node0", tmp_path / "node1"
    reference_runs.copy(node0 / "run", *data(digits), *TWO_RANKS, ranks=2)
    reference_runs.copy(node1 / "run", *data(digits), *TWO_RANKS, ranks=2)
    launch = tmp_path / "launch.py"
    launch.write_text(_LAUNCH)

    def run(*extra, check=True):
        return train(*data(digits), *TWO_RANKS, "--save-dir", "run", "--resume", *extra,
                     ranks=2, hooked=False, launcher=(str(launch), str(node0), str(node1)),
                     check=check)
    run("--num-epochs", "3")
    assert (node0 / "run" / "imagenet-resnest_tiny-2.params").is_file()
    assert not (node1 / "run" / "imagenet-resnest_tiny-2.params").exists()
    proc = run("--num-epochs", "4", check=False)
    assert proc.returncode != 0
    assert "rank(s) 1 cannot read the checkpoint" in proc.stderr
    assert "imagenet-resnest_tiny-2.params" in proc.stderr


def test_resume_onto_another_rank_count(digits, reference_runs, tmp_path):
    """The 2-rank reference run continued on 1 rank (and back on 2): refused without
    --resume-override; with it, training goes on from the epoch checkpoint with the new
    global LR (LR x workers)."""
    run = reference_runs.copy(tmp_path / "run", *data(digits), *TWO_RANKS, ranks=2)
    args = [*data(digits), *TWO_RANKS, "--save-dir", run, "--resume"]
    proc = train(*args, "--num-epochs", "3", check=False)
    assert proc.returncode == 2 and "workers 2 -> 1" in proc.stderr
    train(*args, "--num-epochs", "3", "--resume-override")
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["workers"], cfg["start_epoch"], cfg["global_lr"]) == (1, 2, 0.05)
    train(*args, "--num-epochs", "4", "--resume-override", ranks=2)
    cfg = json.loads((run / "config.json").read_text())
    assert (cfg["workers"], cfg["start_epoch"], cfg["global_lr"]) == (2, 3, 0.1)
    assert [e["epoch"] for e in epochs(run)] == [0, 1, 2, 3]
