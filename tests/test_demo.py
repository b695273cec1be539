"""The main job in miniature: a small real digits tree -> im2rec -> 2-rank horovodrun training
(1 epoch) -> verify -> benchmark -> report; the report's numbers are those of the run's files."""
import json
import os
import shutil
import sys

import pytest

from conftest import REPO

sys.path.insert(0, os.path.join(REPO, "scripts"))
import demo  # noqa: E402


@pytest.fixture
def small_digits(tmp_path):
    from resnest.gluon.data import write_digits
    full = tmp_path / "full"
    write_digits(str(full), size=32)
    small = tmp_path / "images"
    for split, keep in (("train", 8), ("val", 3)):
        for digit in sorted(os.listdir(full / split)):
            os.makedirs(small / split / digit)
            for name in sorted(os.listdir(full / split / digit))[:keep]:
                shutil.copy(full / split / digit / name, small / split / digit / name)
    return small


def test_demo_end_to_end_in_miniature(small_digits, tmp_path, capsys):
    runs = tmp_path / "runs"
    args = ["--images", str(small_digits), "--data-dir", str(tmp_path / "data"),
            "--runs-dir", str(runs), "--model", "resnest_tiny", "--epochs", "1",
            "--batch-size", "8", "--benchmark-dtypes", "float32"]
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
    for row in bench:
        assert f"{row['images_per_s']:8.1f}" in out
    for name in ("report.txt", "latency.png", "train/curves.png", "train/config.json",
                 "train/imagenet-resnest_tiny-0.params"):
        assert (folder / name).is_file(), name
    with open(folder / "report.txt") as f:
        assert f.read().strip() in out


def test_new_run_folder_never_reuses_one(tmp_path):
    first = demo.new_run_dir(str(tmp_path))
    second = demo.new_run_dir(str(tmp_path))
    assert first != second and os.path.isdir(first) and os.path.isdir(second)
