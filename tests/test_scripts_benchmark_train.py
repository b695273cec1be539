"""scripts/gluon/benchmark_train.py --autoaug end to end."""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO


def test_benchmark_train_autoaug_compares_both_pipelines(tmp_path):
    """benchmark_train.py --autoaug on 24 sample-photo images: both pipelines deliver images,
    the cores-per-GPU figures follow from the rates."""
    out = tmp_path / "aa.json"
    cmd = [sys.executable, os.path.join(REPO, "scripts", "gluon", "benchmark_train.py"),
           "--autoaug", "--autoaug-images", "24", "--batch-size", "4", "--rounds", "1",
           "--gpu-img-per-sec", "400", "--json", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(out.read_text())
    assert r["images"] == 24 and r["omp_num_threads"] == "1"
    assert r["authors_img_per_sec_per_core"] > 0 and r["ours_img_per_sec_per_core"] > 0
    assert r["speedup"] == pytest.approx(r["ours_img_per_sec_per_core"]
                                         / r["authors_img_per_sec_per_core"])
    assert r["cores_per_gpu"]["400.0"]["ours"] == pytest.approx(
        400 / r["ours_img_per_sec_per_core"])
    assert "cores of ours" in proc.stdout
