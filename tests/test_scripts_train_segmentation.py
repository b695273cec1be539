"""scripts/gluon/train_segmentation.py as users run it, on the composed set (real digits on
real photos), under ``horovodrun -np 2 --gloo``: the record carries the data's class names and
the training sizes, the in-training score is what evaluate_segmentation.py measures on the
checkpoint, a rank that dies mid-epoch resumes bit-identically, and a bad pair is one sentence
(how the ranks share the check: test_train_segmentation.py; the reading rules:
test_data_segmentation.py)."""
import json
import os
import shutil
import sys

import numpy as np
from PIL import Image

from _runs import env, epochs, params, same, script, train
from resnest.gluon.data.composed import CLASS_NAMES

TRAIN = script("train_segmentation.py")
TINY = ["--model", "fcn_resnest_tiny", "--base-size", "64", "--crop-size", "64",
        "--data-nthreads", "1", "--no-progress", "--log-interval", "1", "--lr", "0.02"]
NAME = "segmentation-fcn_resnest_tiny"


def _run(*args, ranks=2, check=True, **extra):
    return train(*args, ranks=ranks, script=TRAIN, check=check, run_env=env(**extra))


def test_two_ranks_train_die_resume_and_score_like_the_evaluator(composed_data, tmp_path):
    # 64 training images, 8 per rank: 4 steps in the one epoch; rank 0 dies before step 3,
    # after the mid-epoch checkpoint of step 2.
    args = ["--data-dir", str(composed_data), *TINY, "--aux", "--batch-size", "8",
            "--num-epochs", "1", "--save-interval-steps", "2", "--seed", "5"]
    straight, died = tmp_path / "straight", tmp_path / "died"
    _run(*args, "--save-dir", straight)
    record = json.loads((straight / f"{NAME}-0.json").read_text())
    assert record["task"] == "segmentation" and record["class_names"] == list(CLASS_NAMES)
    assert record["eval"] == {"base_size": 64, "crop_size": 64}
    assert record["run"]["val_data"].startswith("composed val: 5 pairs")
    (row,) = epochs(straight)
    assert row["val_samples"] == 5                              # 5 images over 2 ranks

    proc = _run(*args, "--save-dir", died, check=False, RESNEST_TEST_FAULT="die:0:0:3")
    assert proc.returncode != 0 and "rank 0 exits at epoch 0 step 3" in proc.stderr
    assert not (died / f"{NAME}-0.json").exists()
    assert [p.name for p in died.glob(f"{NAME}-0-step*.json")] == [f"{NAME}-0-step2.json"]
    resumed = _run(*args, "--save-dir", died, "--resume")
    assert "(from step 2)" in resumed.stdout + resumed.stderr
    assert same(params(straight / f"{NAME}-0.params"), params(died / f"{NAME}-0.params"))
    assert epochs(died)[-1]["mIoU"] == row["mIoU"]

    # The 64 x 64 images are their own 64 crop: the in-training validation is the
    # single-scale evaluation of the final checkpoint by the other command (run here).
    sys.path.insert(0, os.path.dirname(script("evaluate_segmentation.py")))
    import evaluate_segmentation
    out = tmp_path / "ev.json"
    assert evaluate_segmentation.main([
        "--model", "fcn_resnest_tiny", "--resume", str(straight / f"{NAME}-0.params"),
        "--data-dir", str(composed_data), "--backend", "mxnet", "--json", str(out),
        "--no-progress", "-j", "0"]) == 0
    scored = json.loads(out.read_text())
    assert scored["images"] == 5 and scored["protocol"] == "single-scale"
    assert abs(scored["pixAcc"] - row["pixAcc"]) < 1e-4         # metrics.jsonl: 4 decimals
    assert abs(scored["mIoU"] - row["mIoU"]) < 1e-4


def test_a_bad_pair_is_one_sentence(composed_data, tmp_path):
    root = tmp_path / "broken"
    shutil.copytree(composed_data, root)
    mask = sorted((root / "annotations" / "validation").glob("*.png"))[3]
    Image.fromarray(np.asarray(Image.open(mask))[:50]).save(mask)
    proc = _run("--data-dir", root, *TINY, "--batch-size", "4", "--num-epochs", "1",
                "--save-dir", tmp_path / "run", ranks=1, check=False)
    assert proc.returncode == 2 and proc.stderr.count("error:") == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "is 64x50 but its image" in proc.stderr
    assert not list((tmp_path / "run").glob("*.params"))
