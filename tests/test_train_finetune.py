"""Fine-tuning on your own classes, with the real digits: pre-train on 0-4, fine-tune on 5-9
with 20 labels per class; --pretrained, --freeze-backbone and --classifier-lr-mult under
Horovod and --resume; class folders packed once (--train-dir)."""
import json
import os
import shutil
import types

import mxnet as mx
import numpy as np
import pytest

import _runs as runs
from conftest import digits_subset

COMMON = ["--model", "resnest_tiny", "--input-size", "32", "--crop-ratio", "1.0",
          "--min-random-area", "0.5", "--no-mirror", "--no-progress", "--data-nthreads", "1",
          "--seed", "0", "--log-interval", "100"]


def _train(*args, ranks=1, check=True):
    return runs.train(*args, *COMMON, ranks=ranks, run_env=runs.env(2 if ranks == 1 else 1),
                      check=check, timeout=600, hooked=False)


def _last_top1(save_dir):
    with open(os.path.join(save_dir, "metrics.jsonl")) as f:
        epochs = [json.loads(line) for line in f if '"kind": "epoch"' in line]
    return epochs[-1]["top1"]


def _params(path):
    return {k: v.asnumpy() for k, v in mx.nd.load(str(path)).items()}


@pytest.fixture(scope="module")
def tuning(digits, tmp_path_factory):
    """Digits 0-4 (all training images, copied from the shared digits) and 5-9 (write_digits'
    seeded draw of 20 training images a class: the draw the margin below was measured on; the
    first 20 by name give a stronger scratch run), and a model pre-trained on 0-4 by train.py."""
    from resnest.gluon.data import write_digits
    root = tmp_path_factory.mktemp("finetune")
    digits_subset(digits, root / "d04", classes=range(5))
    write_digits(str(root / "d59"), classes=[5, 6, 7, 8, 9], train_per_class=20)
    # Evaluated once, at the end (the top-1 the assertion reads): evaluation only reads the
    # weights, and --eval-frequency is an operational option (not part of the run's identity).
    _train("--train-dir", str(root / "d04" / "train"), "--val-dir", str(root / "d04" / "val"),
           "--save-dir", str(root / "pre"), "--num-epochs", "8", "--batch-size", "32",
           "--lr", "0.05", "--warmup-epochs", "1", "--eval-frequency", "8")
    assert _last_top1(root / "pre") > 90
    return types.SimpleNamespace(root=root,
                                 pre=str(root / "pre" / "imagenet-resnest_tiny-7.params"))


def test_finetuning_beats_training_from_scratch(tuning, tmp_path):
    data = ["--train-dir", str(tuning.root / "d59" / "train"), "--val-dir",
            str(tuning.root / "d59" / "val"), "--num-epochs", "10", "--batch-size", "16",
            "--eval-frequency", "10"]                 # the last top-1 only: see tuning()
    tuned = _train(*data, "--save-dir", str(tmp_path / "ft"), "--lr", "0.01",
                   "--classifier-lr-mult", "10", "--pretrained-params", tuning.pre)
    _train(*data, "--save-dir", str(tmp_path / "sc"), "--lr", "0.05")
    log = tuned.stdout + tuned.stderr
    assert "parameter arrays loaded, 2 re-initialised (fc.weight, fc.bias" in log
    ft, scratch = _last_top1(tmp_path / "ft"), _last_top1(tmp_path / "sc")
    # The same 70 steps on 100 labelled images of digits the pre-trained model never saw
    # (measured here: 88.8% against 70.4%).
    assert ft >= scratch + 15, (ft, scratch)
    meta = json.loads((tmp_path / "ft" / "imagenet-resnest_tiny-9.json").read_text())
    assert meta["class_names"] == ["5", "6", "7", "8", "9"]


def test_frozen_backbone_with_a_faster_head_under_horovod_and_resume(tuning, tmp_path):
    data = ["--train-dir", str(tuning.root / "d59" / "train"), "--val-dir",
            str(tuning.root / "d59" / "val"), "--batch-size", "8", "--lr", "0.01",
            "--pretrained-params", tuning.pre, "--freeze-backbone",
            "--classifier-lr-mult", "5", "--save-dir", str(tmp_path / "run"),
            "--save-frequency", "1"]
    _train(*data, "--num-epochs", "1", ranks=2)
    _train(*data, "--num-epochs", "2", "--resume", ranks=2)
    pre, after = _params(tuning.pre), _params(tmp_path / "run" / "imagenet-resnest_tiny-1.params")
    body = [k for k in after if not k.startswith("fc.")]
    assert body and all(np.array_equal(pre[k], after[k]) for k in body)   # BN stats too
    assert after["fc.weight"].shape == (5, pre["fc.weight"].shape[1])
    assert np.abs(after["fc.weight"]).sum() > 0
    epochs = [json.loads(line)["epoch"] for line in open(tmp_path / "run" / "metrics.jsonl")
              if '"kind": "epoch"' in line]
    assert epochs == [0, 1]


def test_pretrained_takes_the_published_weights_from_the_store(tuning, tmp_path, monkeypatch):
    """--pretrained reads the store (sha1-checked); here resnest_tiny 'publishes' the
    pre-trained digits model in a local store."""
    import hashlib
    from resnest.gluon.pretrained import PRETRAINED, EvalSettings, PretrainedInfo
    from resnest.gluon.train import parse_config, train
    sha1 = hashlib.sha1(open(tuning.pre, "rb").read()).hexdigest()
    info = PretrainedInfo("resnest_tiny", sha1, ("gluoncv",), eval=EvalSettings(32))
    monkeypatch.setitem(PRETRAINED, "resnest_tiny", info)
    monkeypatch.setenv("MXNET_HOME", str(tmp_path / "home"))
    os.makedirs(tmp_path / "home" / "models")
    shutil.copy(tuning.pre, tmp_path / "home" / "models" / info.file_name)
    cfg = parse_config(["--train-dir", str(tuning.root / "d59" / "train"), "--val-dir",
                        str(tuning.root / "d59" / "val"), "--num-epochs", "1", "--batch-size", "16",
                        "--lr", "0.01", "--pretrained", "--freeze-backbone",
                        "--save-dir", str(tmp_path / "run"), *COMMON])
    train(cfg)
    pre = _params(tuning.pre)
    after = _params(tmp_path / "run" / "imagenet-resnest_tiny-0.params")
    assert np.array_equal(pre["layer1.0.conv1.weight"], after["layer1.0.conv1.weight"])


def test_weights_of_another_architecture_are_one_sentence(tuning, tmp_path):
    from resnest.gluon import get_model
    other = get_model("resnest14", classes=5)
    other.initialize()
    other.save_parameters(str(tmp_path / "r14.params"))
    proc = _train("--train-dir", str(tuning.root / "d59" / "train"), "--val-dir",
                  str(tuning.root / "d59" / "val"), "--num-epochs", "1", "--batch-size", "16",
                  "--pretrained-params", str(tmp_path / "r14.params"),
                  "--save-dir", str(tmp_path / "run"), check=False)
    assert proc.returncode == 2 and "does not hold resnest_tiny weights" in proc.stderr
    assert proc.stderr.count("error:") == 1 and "Traceback" not in proc.stderr


