"""scripts/gluon/verify.py end to end on the suite's real held-out digits with the digits model
(conftest.digits, conftest.digits_net): every image counted once and counted right (any batch
size, 1 or 2 ranks, every engine), int8 as accurate as float32, clear errors on bad input."""
import json
import os
import shutil
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from resnest.gluon import UserError, get_model

from conftest import REPO, engine_or_skip

VERIFY = os.path.join(REPO, "scripts", "gluon", "verify.py")
IMAGES = 359                     # the shared digits' val: not a multiple of any batch size


@pytest.fixture(scope="module")
def data(digits, digits_net, tmp_path_factory):
    """A folder holding the digits model's weights (``tiny10.params``, trained by
    conftest.digits_net) and a copy of the shared digits' val pack (``val.*``)."""
    root = tmp_path_factory.mktemp("verify")
    for ext in (".rec", ".idx", ".lst", ".classes.txt"):
        shutil.copy(digits.val_rec[:-4] + ext, root / ("val" + ext))
    digits_net.save_parameters(str(root / "tiny10.params"))
    return root


def _hand_counts(net, batches):
    """Top-1 and top-5 hits of ``net`` on ``(data, label, valid)`` batches, counted here with
    numpy (not by the evaluator under test)."""
    top1 = top5 = 0
    for x, y, valid in batches:
        order = np.argsort(-net(x).asnumpy()[:valid], axis=1)
        labels = y.asnumpy()[:valid].astype(int)[:, None]
        top1 += int((order[:, :1] == labels).sum())
        top5 += int((order[:, :5] == labels).sum())
    return top1, top5


def _verify(main, data, *extra, batch_size=8):
    out = data / f"result-{batch_size}-{len(extra)}.json"
    argv = ["--model", "resnest_tiny", "--resume", str(data / "tiny10.params"),
            "--crop-size", "32", "--crop-ratio", "1", "--batch-size", str(batch_size),
            "-j", "1", "--no-progress", "--json", str(out)] + list(extra)
    assert main(argv) == 0
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def main():
    sys.path.insert(0, os.path.dirname(VERIFY))
    import verify
    return verify.main


def test_every_image_counted_once_whatever_the_batch_size(main, data, digits_net,
                                                          digits_data):
    rec = ["--rec-val", str(data / "val.rec")]
    results = [_verify(main, data, *rec, batch_size=b) for b in (1, 8, 64)]
    assert [r["images"] for r in results] == [IMAGES] * 3
    assert len({(r["correct1"], r["correct5"], round(r["loss"], 4)) for r in results}) == 1
    # The counts of the model run by hand on the same images in the same batches of 64; ten
    # classes, so top-5 can miss (the 3-class model this test had made every top-5 a hit).
    assert (results[2]["correct1"], results[2]["correct5"]) == \
        _hand_counts(digits_net, digits_data[2])
    assert results[2]["correct1"] > 0.8 * IMAGES                     # the model has learnt
    r = results[1]
    assert r["top1"] == pytest.approx(100 * r["correct1"] / IMAGES, abs=1e-3)
    assert r["model_images_per_s"] > r["end_to_end_images_per_s"] > 0


def test_int8_counts_every_image_and_calibrates_across_the_file(main, data):
    fp32 = _verify(main, data, "--rec-val", str(data / "val.rec"))
    int8 = _verify(main, data, "--rec-val", str(data / "val.rec"), "--dtype", "int8",
                   "--calib-mode", "naive", "--calib-batches", "3")
    assert int8["images"] == IMAGES and int8["dtype"] == "int8"
    # A trained 10-class model (the 3-class untrained one this had let int8 miss a third of
    # the images): int8 keeps float32's accuracy within 5 points (tests/
    # test_inference_mxnet.py measures 94-97% agreement of the two on these digits).
    assert fp32["correct1"] > 0.8 * IMAGES
    assert int8["correct1"] >= fp32["correct1"] - 0.05 * IMAGES, (int8, fp32)


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_backend_float32_counts_equal_mxnet_and_int8_runs(main, data, backend):
    engine_or_skip(backend)
    rec = ["--rec-val", str(data / "val.rec")]
    mxnet = _verify(main, data, *rec)
    fp32 = _verify(main, data, *rec, "--backend", backend)
    assert fp32["backend"] == backend and fp32["images"] == IMAGES
    assert (fp32["correct1"], fp32["correct5"]) == (mxnet["correct1"], mxnet["correct5"])
    assert fp32["loss"] == pytest.approx(mxnet["loss"], rel=1e-4)
    int8 = _verify(main, data, *rec, "--backend", backend, "--dtype", "int8",
                   "--calib-batches", "3", batch_size=7)
    assert int8["images"] == IMAGES and int8["dtype"] == "int8"
    assert int8["correct1"] >= fp32["correct1"] - 0.05 * IMAGES, (int8, fp32)


def test_demo_rows_carry_verify_top1_and_timed_latency(main, data, tmp_path):
    """tools.accuracy_latency: the demo's rows of measured top-1 per backend and dtype plus
    latency, and the chart drawn from them."""
    pytest.importorskip("onnxruntime")
    sys.path.insert(0, REPO)
    from tools.accuracy_latency import accuracy_latency, format_rows
    want = _verify(main, data, "--rec-val", str(data / "val.rec"), "--backend", "onnxruntime")
    rows, skipped = accuracy_latency("resnest_tiny", str(data / "tiny10.params"),
                                     str(data / "val.rec"), backends=("mxnet", "onnxruntime"),
                                     dtypes=("float32", "bfloat16"), batch_sizes=(1, 4),
                                     rounds=3, chart=str(tmp_path / "chart.png"))
    assert ("onnxruntime:bfloat16" in dict(skipped)
            and "does not run bfloat16" in dict(skipped)["onnxruntime:bfloat16"])
    by_key = {(r["backend"], r["dtype"], r["batch_size"]): r for r in rows}
    assert {k[2] for k in by_key} == {1, 4}
    for batch in (1, 4):
        row = by_key[("onnxruntime", "float32", batch)]
        assert row["top1"] == want["top1"] and row["images"] == IMAGES
        assert row["ms_per_image"] == pytest.approx(row["median_ms"] / batch, rel=1e-3)
        assert row["runs"] == 3 and row["median_ms"] <= row["p99_ms"]
    assert (tmp_path / "chart.png").stat().st_size > 1000
    assert len(format_rows(rows)) == len(rows) + 1


def test_rec_dir_and_class_folders_give_the_same_counts(main, data, digits, tmp_path):
    for ext in (".rec", ".idx", ".classes.txt", ".lst"):
        shutil.copy(data / ("val" + ext), tmp_path / ("val" + ext))
    by_rec = _verify(main, data, "--rec-dir", str(tmp_path))
    by_folder = _verify(main, data, "--data-dir", str(digits.val))
    assert by_folder["images"] == by_rec["images"] == IMAGES
    assert by_folder["correct1"] == by_rec["correct1"]


def test_two_horovod_ranks_count_every_image_once(main, data):
    horovodrun = os.path.join(os.path.dirname(sys.executable), "horovodrun")
    if not os.path.isfile(horovodrun):
        pytest.skip("horovodrun is not installed")
    single = _verify(main, data, "--rec-val", str(data / "val.rec"))
    out = data / "two-ranks.json"
    cmd = [horovodrun, "-np", "2", "--gloo", sys.executable, VERIFY, "--model", "resnest_tiny",
           "--resume", str(data / "tiny10.params"), "--rec-val", str(data / "val.rec"),
           "--crop-size", "32", "--crop-ratio", "1", "--batch-size", "8", "-j", "1",
           "--no-progress", "--json", str(out)]
    env = dict(os.environ)
    env.pop("OMP_NUM_THREADS", None)          # verify.py gives each rank its share
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    two = json.loads(out.read_text())
    assert two["ranks"] == 2 and two["images"] == IMAGES
    assert (two["correct1"], two["correct5"]) == (single["correct1"], single["correct5"])
    assert two["threads_per_rank"] == max(1, len(os.sched_getaffinity(0)) // 2)


def test_bad_inputs_are_one_sentence_errors(main, data, tmp_path):
    rec = ["--rec-val", str(data / "val.rec")]
    other = get_model("resnest14", classes=10)
    other.initialize()
    other(mx.nd.zeros((1, 3, 32, 32)))
    other.save_parameters(str(tmp_path / "r14.params"))
    with pytest.raises(UserError, match="does not fit model resnest_tiny"):
        main(["--model", "resnest_tiny", "--resume", str(tmp_path / "r14.params")] + rec)
    with pytest.raises(UserError, match="--crop-size must be at least 32, got 16"):
        main(["--model", "resnest_tiny", "--resume", str(data / "tiny10.params"),
              "--crop-size", "16"] + rec)
    with pytest.raises(UserError, match="does not exist"):
        main(["--model", "resnest_tiny", "--resume", str(data / "tiny10.params"),
              "--rec-val", str(tmp_path / "missing.rec")])
    with pytest.raises(UserError, match="--crop-size must be at least 32, got 0"):  # not 224
        main(["--model", "resnest_tiny", "--resume", str(data / "tiny10.params"),
              "--crop-size", "0"] + rec)
    with pytest.raises(UserError, match="--crop-size 40000 with batch size 8 needs at least"):
        main(["--model", "resnest_tiny", "--resume", str(data / "tiny10.params"),
              "--crop-size", "40000", "--batch-size", "8"] + rec)
    # From the command line: exit code 2 and a single line on stderr, no traceback.
    proc = subprocess.run([sys.executable, VERIFY, "--model", "resnest_tiny", "--resume",
                           str(data / "tiny10.params"), "--rec-val", str(tmp_path / "no.rec")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no.rec" in errors[0] and "Traceback" not in proc.stderr
