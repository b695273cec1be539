"""What a person watching a run sees: metrics.jsonl (a torn line from a killed writer ignored),
the curves PNG, config.json and the log, on rank 0 only."""
import json
import os

from resnest.gluon.train.classification import ClassificationTask
from resnest.gluon.train.monitor import Monitor, read_metrics


def test_monitor_writes_metrics_and_png(tmp_path):
    mon = Monitor(str(tmp_path), enabled=True, progress=False, task=ClassificationTask)
    mon.save_config({"model": "m"})
    for epoch in range(2):
        for step in range(2):
            mon.step(epoch, step, 2, 1.0 / (epoch + step + 1), 0.1, 100.0, 1.0)
        mon.epoch_end(epoch, {"train_loss": 0.5, "img_per_sec": 100.0, "epoch_time": 1.0,
                              "lr": 0.1, "top1": 50.0 + epoch, "top5": 90.0,
                              "val_samples": 10})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"kind": "st')  # a torn line from a killed writer
    mon.finish()
    records = read_metrics(str(tmp_path / "metrics.jsonl"))
    assert [r["kind"] for r in records].count("step") == 4
    assert records[-1]["top1"] == 51.0 and records[-1]["val_samples"] == 10
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "config.json").read_text()) == {"model": "m"}
    log = (tmp_path / "train.log").read_text()
    assert "epoch 1 done" in log and "top1 51.00% top5 90.00% (10 images)" in log
    off = Monitor(str(tmp_path / "other"), enabled=False)
    off.step(0, 0, 1, 1.0, 0.1, 1.0, 1.0)
    assert not os.path.exists(tmp_path / "other")
