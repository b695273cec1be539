"""Smoke tests of scripts/gluon/train.py: one process, two Horovod ranks, kill -9 and resume,
a dying or hanging rank, and bad input. Data: the real digits, packed by our im2rec.py."""
import json
import os
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
        "--data-nthreads", "1", "--no-progress", "--use-rec"]


def _load_script(name, *parts):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "scripts", *parts))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """``(train.rec, val.rec)`` of the scikit-learn digits at 32x32 (class-ordered packs)."""
    root = tmp_path_factory.mktemp("digits")
    assert _load_script("make_digits", "dataset", "make_digits.py").main(
        [str(root / "img"), "--size", "32"]) in (0, None)
    im2rec = _load_script("im2rec", "dataset", "im2rec.py")
    for split in ("train", "val"):
        assert im2rec.main([str(root / "img" / split), str(root / split),
                            "--workers", "1", "--no-progress"]) == 0
    return str(root / "train.rec"), str(root / "val.rec")


@pytest.fixture(scope="module")
def small(digits, tmp_path_factory):
    """The first 480 training digits (48 per class) and the first 100 validation ones, for
    runs that test mechanics, not learning."""
    root = tmp_path_factory.mktemp("small")
    out = []
    for src, n in zip(digits, (480, 100)):
        reader = mx.recordio.MXIndexedRecordIO(src[:-4] + ".idx", src, "r")
        prefix = str(root / os.path.basename(src)[:-4])
        writer = mx.recordio.MXIndexedRecordIO(prefix + ".idx", prefix + ".rec", "w")
        keys = sorted(reader.keys)
        for i, k in enumerate(keys[j * len(keys) // n] for j in range(n)):
            writer.write_idx(i, reader.read_idx(k))
        writer.close()
        reader.close()
        out.append(prefix + ".rec")
    return tuple(out)


def _env(threads=1, **extra):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), **extra)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _args(digits, save_dir, *extra):
    return ["--rec-train", digits[0], "--rec-val", digits[1], "--save-dir", str(save_dir),
            *TINY, *extra]


def _epochs(save_dir):
    with open(os.path.join(save_dir, "metrics.jsonl")) as f:
        return [r for r in map(json.loads, f) if r["kind"] == "epoch"]


def _params(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}


def _main():
    return _load_script("train_script", "gluon", "train.py").main


def test_single_process_full_recipe(small, tmp_path):
    """Every recipe switch at once (AutoAugment, mixup, smoothing, DropBlock, last-gamma)."""
    out = tmp_path / "run"
    assert _main()(_args(small, out, "--num-epochs", "1", "--batch-size", "64", "--lr",
                         "0.1", "--last-gamma", "--no-wd", "--label-smoothing", "--mixup",
                         "--auto_aug", "--dropblock-prob", "0.1", "--warmup-epochs", "1",
                         "--log-interval", "5")) == 0
    (last,) = _epochs(out)
    assert last["val_samples"] == 100 and 0 <= last["top1"] <= last["top5"] <= 100
    assert last["samples"] == 512  # 8 full batches of 64: the last one wraps around
    meta = json.loads((out / "imagenet-resnest_tiny-0.json").read_text())
    assert (meta["epoch"], meta["resume_epoch"], meta["resume_step"]) == (0, 1, 0)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["classes_resolved"] == 10 and cfg["train_samples"] == 480 and cfg["auto_aug"]
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "imagenet-resnest_tiny-0.states").stat().st_size > 0


def test_two_ranks_horovod_learn_and_count_every_val_image(digits, tmp_path):
    out = tmp_path / "hvd"
    cmd = [HOROVODRUN, "-np", "2", "--gloo", PY, TRAIN,
           *_args(digits, out, "--num-epochs", "4", "--batch-size", "32", "--lr", "0.1",
                  "--warmup-epochs", "1", "--last-gamma", "--no-wd", "--label-smoothing",
                  "--log-interval", "10", "--eval-frequency", "2", "--save-frequency", "2")]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    epochs = _epochs(out)
    assert [e["epoch"] for e in epochs] == [0, 1, 2, 3]
    evaluated = [e for e in epochs if e["top1"] is not None]
    assert [e["epoch"] for e in evaluated] == [1, 3]          # every 2 epochs, end once
    assert all(e["val_samples"] == 359 for e in evaluated)    # summed over both ranks
    assert evaluated[-1]["top1"] > 60, evaluated              # chance is 10%
    assert epochs[0]["samples"] == 23 * 2 * 32                # global count, 2 workers
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["workers"] == 2 and cfg["global_lr"] == pytest.approx(0.2)
    assert sorted(p.name for p in out.glob("imagenet-*.params")) == \
        ["imagenet-resnest_tiny-1.params", "imagenet-resnest_tiny-3.params"]
    assert not list(out.glob(".*tmp"))


def test_kill_9_mid_epoch_then_resume_is_bit_identical(small, tmp_path):
    digits = small
    args = ["--num-epochs", "2", "--batch-size", "16", "--lr", "0.1", "--warmup-epochs", "1",
            "--last-gamma", "--no-wd", "--label-smoothing", "--mixup", "--dropblock-prob",
            "0.1", "--log-interval", "1", "--save-frequency", "1", "--seed", "3"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    env = _env()
    subprocess.run([PY, TRAIN, *_args(digits, straight, *args)], env=env, check=True,
                   capture_output=True, timeout=300)
    proc = subprocess.Popen([PY, TRAIN, *_args(digits, killed, *args)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 240
    metrics = killed / "metrics.jsonl"
    while time.monotonic() < deadline and proc.poll() is None:
        lines = metrics.read_text().splitlines() if metrics.exists() else []
        if any('"kind": "step"' in ln and json.loads(ln)["epoch"] == 1
               and json.loads(ln)["step"] >= 3 for ln in lines[:-1]):
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "imagenet-resnest_tiny-1.json").exists()  # killed inside epoch 1
    subprocess.run([PY, TRAIN, *_args(digits, killed, *args), "--resume"], env=env,
                   check=True, capture_output=True, timeout=300)
    a = _params(straight / "imagenet-resnest_tiny-1.params")
    b = _params(killed / "imagenet-resnest_tiny-1.params")
    assert a.keys() == b.keys()
    assert all(np.array_equal(a[k], b[k]) for k in a), "weights differ after resume"
    assert _epochs(straight)[-1]["top1"] == _epochs(killed)[-1]["top1"]
    assert [e["epoch"] for e in _epochs(killed)] == [0, 1]  # the torn epoch's lines dropped


def _run_with_fault(digits, tmp_path, fault, *extra):
    cmd = [HOROVODRUN, "-np", "2", "--gloo", PY, *HOOKED,
           *_args(digits, tmp_path / "fault", "--num-epochs", "3", "--batch-size", "32",
                  "--log-interval", "5", *extra)]
    start = time.monotonic()
    proc = subprocess.run(cmd, env=_env(RESNEST_TEST_FAULT=fault), capture_output=True,
                          text=True, timeout=180)
    return proc, time.monotonic() - start


def test_a_dying_rank_ends_the_job_nonzero(small, tmp_path):
    proc, elapsed = _run_with_fault(small, tmp_path, "die:1:0:3", "--timeout", "20")
    assert proc.returncode != 0
    assert elapsed < 90
    assert "rank 1 exits at epoch 0 step 3" in proc.stderr


@pytest.mark.slow
def test_a_hanging_rank_ends_the_job_within_the_timeout(small, tmp_path):
    proc, elapsed = _run_with_fault(small, tmp_path, "hang:1:0:3", "--timeout", "10")
    assert proc.returncode != 0
    assert elapsed < 90
    assert "made no progress" in proc.stderr


def _cli(argv):
    from resnest.gluon.utils.cli import run_cli
    with pytest.raises(SystemExit) as exit_info:
        run_cli(_main(), argv)
    return exit_info.value.code


@pytest.mark.parametrize("case, needle", [
    ("missing", "does not exist"),
    ("corrupt", "corrupt"),
    ("model", "unknown model"),
    ("batch", "larger than the 1438 images"),
    ("resume", "found no checkpoint"),
    ("fp16", "needs a GPU"),
])
def test_bad_input_is_one_sentence(digits, tmp_path, capsys, case, needle):
    train, val = digits
    extra = []
    if case == "missing":
        train = str(tmp_path / "nope.rec")
    elif case == "corrupt":
        train = str(tmp_path / "bad.rec")
        with open(train, "wb") as f:
            f.write(os.urandom(4096))
        with open(train[:-4] + ".idx", "w") as f:
            f.write("0\t0\n1\t99999\n")
    elif case == "model":
        extra = ["--model", "resnest_nope"]
    elif case == "batch":
        extra = ["--batch-size", "5000"]
    elif case == "resume":
        extra = ["--resume"]
    elif case == "fp16":
        extra = ["--dtype", "float16"]
    argv = ["--rec-train", train, "--rec-val", val, "--save-dir", str(tmp_path / "o"), *TINY,
            *extra]
    assert _cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err, err
