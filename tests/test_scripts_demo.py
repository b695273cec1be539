"""The main job in miniature: a small real digits tree -> im2rec -> 2-rank horovodrun training
(1 epoch) -> verify -> predict -> accuracy/latency per engine -> report; the report's numbers
are those of the run's files."""
import json
import signal
import time
import os
import sys

import psutil
import pytest

from conftest import REPO, digits_subset

sys.path.insert(0, os.path.join(REPO, "scripts"))
import demo  # noqa: E402


@pytest.fixture
def small_digits(digits, tmp_path):
    """8 training and 3 held-out images of each digit, copied from the shared digits."""
    return digits_subset(digits, tmp_path / "images", train_per_class=8, val_per_class=3)


def test_demo_end_to_end_in_miniature(small_digits, tmp_path, capsys):
    runs = tmp_path / "runs"
    args = ["--images", str(small_digits), "--data-dir", str(tmp_path / "data"),
            "--runs-dir", str(runs), "--model", "resnest_tiny", "--epochs", "1",
            "--batch-size", "8", "--benchmark-dtypes", "float32",
            "--benchmark-backends", "mxnet", "onnxruntime", "--skip-segmentation",
            "--skip-detection"]
    assert demo.main(args) == 0
    out = capsys.readouterr().out
    (run,) = os.listdir(runs)
    folder = runs / run
    with open(folder / "verify.json") as f:
        verify = json.load(f)
    assert verify["images"] == 30                     # every held-out image exactly once
    assert f"top-1 {verify['top1']:.2f}%" in out and "on 30 images" in out
    with open(folder / "train" / "metrics.jsonl") as f:
        epochs = [json.loads(line) for line in f if '"epoch"' in line]
    last = [e for e in epochs if e["kind"] == "epoch"][-1]
    assert f"{last['img_per_sec']:.1f} img/s in the last epoch" in out
    with open(folder / "benchmark.json") as f:
        bench = json.load(f)
    assert {r["batch_size"] for r in bench} == {1, 16}
    assert {r["backend"] for r in bench} == {"mxnet", "onnxruntime"}
    for row in bench:
        # The same checkpoint and evaluator as verify.py: MXNet gives verify.py's top-1, and
        # onnxruntime running our ONNX export names the same classes.
        assert row["top1"] == verify["top1"] and row["images"] == 30
        assert f"{row['top1']:6.2f}% {row['median_ms']:10.2f}" in out
    assert (folder / "accuracy_latency.png").is_file()
    for name in ("report.txt", "train/curves.png", "train/config.json",
                 "train/imagenet-resnest_tiny-0.params"):
        assert (folder / name).is_file(), name
    with open(folder / "report.txt") as f:
        assert f.read().strip() in out
    # predict.py named held-out images with the checkpoint's class names (the digits).
    with open(folder / "predict.json") as f:
        rows = json.load(f)
    assert len(rows) == 6 and all(r["error"] is None for r in rows)
    for r in rows:
        best = r["top"][0]
        assert best["name"] in [str(d) for d in range(10)] and 0 < best["score"] <= 1
        truth = os.path.basename(os.path.dirname(r["image"]))
        assert f"true {truth}  predicted {best['name']} ({100 * best['score']:.1f}%)" in out
    # What a person reads: the stages, progress and results; no rank prefixes from horovodrun
    # and none of MXNet's native log lines.
    from resnest.gluon.utils.cli import is_native_log_line
    assert "<stderr>:" not in out and "<stdout>:" not in out
    assert not [ln for ln in out.splitlines() if is_native_log_line(ln.encode())]
    assert out.count("=== [") == 9 and "segmentation: skipped" in out
    assert "detection: skipped" in out


def test_segmentation_stage_in_miniature(tmp_path, capsys):
    """The stage on a tiny composed set, one process per run: both starts train the same
    steps, the classifier's trunk is loaded, each is scored on every held-out image, and the
    report's lines are the numbers of the runs' metrics.jsonl (whose last validation is
    evaluate_segmentation.py's score, test_scripts_train_segmentation.py)."""
    import mxnet as mx
    from resnest.gluon import get_model
    from tools.report import _segmentation_lines
    classifier = get_model("resnest_tiny", classes=10)
    classifier.initialize(mx.init.Xavier())
    classifier.save_parameters(str(tmp_path / "cls.params"))
    args = demo.parse_args(["--data-dir", str(tmp_path / "data"), "--model", "resnest_tiny",
                            "--seg-size", "48", "--seg-images", "8", "3", "--seg-epochs", "1",
                            "--seg-batch-size", "4", "--seg-ranks", "1"])
    out = tmp_path / "run"
    out.mkdir()
    seg = demo.segmentation_stage(args, sys.executable, str(out), str(tmp_path / "cls.params"))
    printed = capsys.readouterr().out
    assert seg["model"] == "fcn_resnest_tiny" and list(seg["runs"]) == ["classifier trunk",
                                                                         "scratch"]
    steps = set()
    for start, files in seg["runs"].items():
        with open(os.path.join(files["train_dir"], "config.json")) as f:
            config = json.load(f)
        steps.add((config["num_epochs"], config["steps_per_epoch"], config["batch_size"]))
        assert config["train_samples"] == 8
    assert steps == {(1, 2, 4)}                                # equal steps: 8 images / 4
    assert "backbone from the classifier" in printed
    lines = _segmentation_lines(seg)
    for start, files in seg["runs"].items():
        with open(os.path.join(files["train_dir"], "metrics.jsonl")) as f:
            scored = [json.loads(line) for line in f if '"kind": "epoch"' in line][-1]
        assert scored["val_samples"] == 3 and scored["mIoU"] is not None
        assert f"backbone from {start:16s}: held-out mIoU {scored['mIoU']:6.2f}%" in \
            "\n".join(lines)
    overlays = sorted(p.name for p in (out / "segmentation" / "segment").glob("*.overlay.jpg"))
    assert len(overlays) == 3 and all(o in "\n".join(lines) for o in overlays)


def test_new_run_folder_never_reuses_one(tmp_path):
    first = demo.new_run_dir(str(tmp_path))
    second = demo.new_run_dir(str(tmp_path))
    assert first != second and os.path.isdir(first) and os.path.isdir(second)


@pytest.mark.slow
def test_the_detection_stage_in_miniature(tmp_path, capsys):
    """--detection-only on 4 composed training images of 96 px, 1 epoch, one process: both
    starts train the same steps, the report's mAP is each run's last evaluation, the pictures
    are drawn. (The classifier here is untrained: the stage's plumbing, not its accuracy.)
    ~50 s of CPU in three runs: slow; test_the_detection_report_is_the_runs_files is the fast
    variant of the report's property."""
    import mxnet as mx
    from resnest.gluon import get_model
    classifier = get_model("resnest_tiny", classes=10)
    classifier.initialize(mx.init.Xavier())
    classifier(mx.nd.zeros((1, 3, 32, 32)))
    backbone = str(tmp_path / "classifier.params")
    classifier.save_parameters(backbone)
    runs = tmp_path / "runs"
    assert demo.main(["--detection-only", "--detection-backbone", backbone, "--data-dir",
                      str(tmp_path / "data"), "--runs-dir", str(runs), "--ranks", "1",
                      "--detection-size", "96", "--detection-images", "4", "3",
                      "--detection-epochs", "1"]) == 0
    out = capsys.readouterr().out
    (run,) = os.listdir(runs)
    folder = runs / run / "detection"
    for start, given in (("scratch", ""), ("pretrained", backbone)):
        with open(folder / start / "config.json") as f:
            assert json.load(f)["backbone_params"] == given
    for start, what in (("scratch", "from scratch"), ("pretrained", "from the digits classifier")):
        with open(folder / start / "metrics.jsonl") as f:
            rows = [json.loads(line) for line in f]
        last = [r for r in rows if r["kind"] == "epoch"][-1]
        steps = {r["steps"] for r in rows if r["kind"] == "step"}
        assert steps == {2}                            # 4 images in batches of 2, both starts
        assert last["val_samples"] == 3
        assert (f"{what:27s} box AP {last['box_ap']:6.2f}  AP50 {last['box_ap50']:6.2f}  on 3 "
                "images after 1 epochs, 2 steps") in out
    with open(folder / "detect.json") as f:
        assert len(json.load(f)) == 3
    assert len(os.listdir(folder / "pictures")) == 3
    assert out.count("=== [") == 2


def test_the_detection_report_is_the_runs_files(tmp_path):
    """tools/report.py's detection lines, from run files written here by hand: the last
    evaluation, the steps of the step rows (3 epochs of 5), detect.py's objects."""
    from tools.report import detection_lines
    for start, ap in (("scratch", 12.5), ("pretrained", 40.25)):
        folder = tmp_path / start
        folder.mkdir()
        rows = [{"kind": "step", "epoch": e, "step": 4, "steps": 5} for e in range(3)]
        rows += [{"kind": "epoch", "epoch": e, "box_ap": None if e < 2 else ap,
                  "box_ap50": None if e < 2 else ap + 20, "val_samples": 7} for e in range(3)]
        (folder / "metrics.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n")
        (folder / "config.json").write_text(json.dumps({"train_samples": 10}))
    (tmp_path / "detect.json").write_text(json.dumps([
        {"image": "/x/a.jpg", "objects": [{"name": "digit 3", "score": 0.914}]},
        {"image": "/x/b.jpg", "objects": []}]))
    text = "\n".join(detection_lines(str(tmp_path)))
    assert ("from scratch                box AP  12.50  AP50  32.50  on 7 images after 3 "
            "epochs, 15 steps (10 training images)") in text
    assert "from the digits classifier  box AP  40.25  AP50  60.25" in text
    assert "a.jpg: digit 3 91%" in text and "b.jpg: nothing above the threshold" in text


class _Stop(Exception):
    pass


def test_a_stage_never_outlives_the_demo(tmp_path):
    # a stage that starts a child of its own, then waits; the demo is interrupted meanwhile
    # (as by Ctrl-C, SIGTERM or a test's timeout): the stage and its child end with it
    pids = tmp_path / "pids"
    stage = ("import os, subprocess, sys, time\n"
             "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'])\n"
             f"open({str(pids)!r}, 'w').write(f'{{os.getpid()}} {{child.pid}}')\n"
             "print('started', flush=True)\n"
             "time.sleep(600)\n")

    def interrupt(signum, frame):
        raise _Stop()

    old = signal.signal(signal.SIGALRM, interrupt)
    signal.alarm(5)
    try:
        with pytest.raises(_Stop):
            demo.run([sys.executable, "-c", stage])
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    started = [int(p) for p in pids.read_text().split()]
    assert len(started) == 2
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
              for p in started) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in started if psutil.pid_exists(p)
                and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
