"""scripts/gluon/train_detection.py end to end on the composed real-pixel set: two Horovod
ranks (an odd number of validation images, each counted once), a rank dying inside an epoch
and a bit-identical resume, starting from a checkpoint, and bad input in one sentence. Small:
the tiny Faster R-CNN at 80-96 px, 4 training images, 1-2 steps per epoch.

Expected values: the composed set's own COCO file (its categories, its image count), the
uninterrupted run's weights (for the resumed one), the refusal rules of data/coco.py."""
import json
import os
import subprocess

import mxnet as mx
import pytest

from _runs import HOOKS, HOROVODRUN, PY, env
from _runs import params as _params, same as _same
from conftest import REPO
from resnest.gluon.utils.errors import UserError

pytest.importorskip("pycocotools")
SCRIPT = os.path.join(REPO, "scripts", "gluon", "train_detection.py")
MODEL = "faster_rcnn_fpn_resnest_tiny"
TINY = ["--model", MODEL, "--train-short", "80", "96", "--max-size", "112", "--val-short", "96",
        "--batch-size", "2", "--norm-layer", "bn", "--lr", "0.01", "--warmup-iters", "3",
        "-j", "0", "--no-progress", "--log-interval", "1", "--seed", "2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The composed set at 96 px, plus one training image without any annotation."""
    from resnest.gluon.data.composed import coco_paths, write_composed
    root = str(tmp_path_factory.mktemp("composed") / "set")
    write_composed(root, size=96, train_images=4, val_images=5, seed=1, objects=(1, 3),
                   object_size=(24, 48))
    train_json, train_images = coco_paths(root, "train")
    coco = json.load(open(train_json))
    coco["images"].append(dict(coco["images"][0], id=100, file_name="unannotated.jpg"))
    os.symlink(os.path.join(train_images, coco["images"][0]["file_name"]),
               os.path.join(train_images, "unannotated.jpg"))
    json.dump(coco, open(train_json, "w"))
    val_json, val_images = coco_paths(root, "val")
    return {"train": train_json, "train_images": train_images, "val": val_json,
            "val_images": val_images}


def _args(data, **replace):
    files = {"train": data["train"], "val": data["val"], **replace}
    return ["--train-annotations", files["train"], "--train-images", data["train_images"],
            "--val-annotations", files["val"], "--val-images", data["val_images"], *TINY]


def _run(*args, ranks=1, check=True, timeout=300, hooked=False, **extra):
    cmd = [PY, *([HOOKS] if hooked else []), SCRIPT, *map(str, args)]
    if ranks > 1:
        cmd = [HOROVODRUN, "-np", str(ranks), "--gloo", *cmd]
    proc = subprocess.run(cmd, env=env(**extra), capture_output=True, text=True,
                          timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


def _main(*args):
    """train_detection.py's main() in this process (a UserError is raised, not printed)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("train_detection_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([str(a) for a in args])


def _epochs(folder):
    return [json.loads(line) for line in open(os.path.join(folder, "metrics.jsonl"))
            if '"kind": "epoch"' in line]


def test_two_ranks_train_evaluate_and_record_the_classes(data, tmp_path):
    out = str(tmp_path / "run")
    _run(*_args(data), "--num-epochs", "1", "--save-dir", out, ranks=2)
    record = json.load(open(os.path.join(out, f"detection-{MODEL}-0.json")))
    names = [c["name"] for c in sorted(json.load(open(data["train"]))["categories"],
                                       key=lambda c: c["id"])]
    assert record["class_names"] == names and record["task"] == "detection"
    assert record["eval"] == {"short": 96, "max_size": 112}
    epochs = _epochs(out)
    assert [e["epoch"] for e in epochs] == [0]
    # 5 validation images over 2 ranks (shares 2 and 3): every one counted once.
    assert epochs[0]["val_samples"] == 5 and 0 <= epochs[0]["box_ap"] <= 100
    log = open(os.path.join(out, "train.log")).read()
    assert "1 training images have no box to learn from" in log
    assert "2 worker(s)" in log and "1 steps/epoch" in log      # 4 images / (2 ranks x 2)


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory):
    """An uninterrupted run of 1 epoch of 2 steps, a checkpoint every step."""
    out = str(tmp_path_factory.mktemp("straight") / "run")
    assert _main(*_args(data), *RESUMABLE, "--save-dir", out) == 0
    return out


RESUMABLE = ["--num-epochs", "1", "--save-interval-steps", "1"]


def test_a_rank_dying_inside_an_epoch_resumes_bit_identically(data, straight, tmp_path):
    killed = str(tmp_path / "killed")
    died = _run(*_args(data), *RESUMABLE, "--save-dir", killed, hooked=True, check=False,
                RESNEST_TEST_FAULT="die:0:0:1")
    assert died.returncode != 0 and "test fault" in died.stderr
    assert os.path.exists(os.path.join(killed, f"detection-{MODEL}-0-step1.json"))
    assert not os.path.exists(os.path.join(killed, f"detection-{MODEL}-0.json"))
    assert _main(*_args(data), *RESUMABLE, "--save-dir", killed, "--resume") == 0
    assert "(from step 1)" in open(os.path.join(killed, "train.log")).read()
    a = _params(os.path.join(straight, f"detection-{MODEL}-0.params"))
    b = _params(os.path.join(killed, f"detection-{MODEL}-0.params"))
    assert _same(a, b), "weights differ after a mid-epoch resume"
    assert _epochs(killed)[-1]["box_ap"] == _epochs(straight)[-1]["box_ap"]


def test_fine_tuning_from_a_checkpoint_of_ours(data, straight, tmp_path):
    checkpoint = os.path.join(straight, f"detection-{MODEL}-0.params")
    out = str(tmp_path / "tuned")
    assert _main(*_args(data), "--num-epochs", "1", "--save-dir", out, "--pretrained-params",
                 checkpoint, "--eval-frequency", "0") == 0
    log = open(os.path.join(out, "train.log")).read()
    assert f"started from {checkpoint}" in log
    assert "fresh" not in log                                  # same classes: all of it


def _edited(data, tmp_path, split, edit):
    coco = json.load(open(data[split]))
    edit(coco)
    path = str(tmp_path / f"{split}-{edit.__name__}.json")
    json.dump(coco, open(path, "w"))
    return path


def test_bad_input_is_one_sentence(data, tmp_path):
    def outside(coco):
        coco["annotations"][0]["bbox"][0] = 90.0                 # 90 + width > 96 + 1

    def unknown(coco):
        coco["annotations"][1]["category_id"] = 77

    def renamed(coco):
        coco["categories"][3]["name"] = "cat"
    cases = [({"train": _edited(data, tmp_path, "train", outside)}, (),
              "pixel outside its image"),
             ({"val": _edited(data, tmp_path, "val", unknown)}, (),
              "category 77.*not among its categories"),
             ({"val": _edited(data, tmp_path, "val", renamed)}, (), "categories.*differ"),
             ({}, ("--batch-size", "1"), "--batch-size must be at least 2")]
    for k, (files, extra, words) in enumerate(cases):
        with pytest.raises(UserError, match=words):
            _main(*_args(data, **files), *extra, "--save-dir", tmp_path / f"run{k}")


def test_a_weights_file_of_another_model_is_one_sentence(data, tmp_path):
    from resnest.gluon import get_model
    classifier = get_model("resnest_tiny", classes=10)
    classifier.initialize()
    classifier(mx.nd.zeros((1, 3, 32, 32)))
    path = str(tmp_path / "classifier.params")
    classifier.save_parameters(path)
    with pytest.raises(UserError, match=f"{path}.*does not fit"):
        _main(*_args(data), "--pretrained-params", path, "--save-dir", tmp_path / "e")


@pytest.mark.slow
def test_two_ranks_resume_after_a_rank_dies_bit_identically(data, tmp_path):
    """As the fast resume test, under horovodrun -np 2 --gloo: rank 0 dies at the start of
    epoch 1 (after writing epoch 0's checkpoint; a dying rank 1 could stop rank 0 before it
    writes), the resumed 2-rank run ends with the uninterrupted 2-rank run's weights. Slow:
    three Horovod jobs."""
    args = [*_args(data), "--num-epochs", "2", "--save-frequency", "1", "--eval-frequency",
            "2"]
    straight, killed = str(tmp_path / "straight"), str(tmp_path / "killed")
    _run(*args, "--save-dir", straight, ranks=2)
    died = _run(*args, "--save-dir", killed, ranks=2, hooked=True, check=False,
                RESNEST_TEST_FAULT="die:0:1:0")
    assert died.returncode != 0
    assert os.path.exists(os.path.join(killed, f"detection-{MODEL}-0.json")), \
        (os.listdir(killed), died.stdout[-1500:] + died.stderr[-1500:])
    assert not os.path.exists(os.path.join(killed, f"detection-{MODEL}-1.json"))
    _run(*args, "--save-dir", killed, "--resume", ranks=2)
    a = _params(os.path.join(straight, f"detection-{MODEL}-1.params"))
    b = _params(os.path.join(killed, f"detection-{MODEL}-1.params"))
    assert _same(a, b), "weights differ after a 2-rank resume"
