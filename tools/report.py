"""The end-of-run report of the main job: every number is read back from the run's own files
(``metrics.jsonl``, the verify JSON, the benchmark JSON), so the report cannot disagree with them.
"""
import json
import os

__all__ = ["demo_report", "detection_lines"]


def _epochs(train_dir):
    rows = []
    with open(os.path.join(train_dir, "metrics.jsonl")) as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                if row.get("kind") == "epoch":
                    rows.append(row)
    return rows


def _benchmark_lines(bench_json):
    with open(bench_json) as f:
        rows = json.load(f)
    if rows and "top1" in rows[0]:                  # benchmark.py --resume: accuracy + latency
        from .accuracy_latency import format_rows
        flags = " ".join(k for k, v in rows[0]["isa"].items() if v)
        return format_rows(rows) + [f"  CPU: {rows[0]['cpu']} ({flags})"]
    lines = [f"  {'impl':8s} {'backend':12s} {'dtype':9s} {'mode':10s} {'batch':>5s} "
             f"{'median ms':>10s} {'p90 ms':>8s} {'p99 ms':>8s} {'img/s':>8s}"]
    for r in rows:
        lines.append(f"  {r['impl']:8s} {r.get('backend', 'mxnet'):12s} {r['dtype']:9s} "
                     f"{r.get('mode', ''):10s} {r['batch_size']:5d} "
                     f"{r['median_ms']:10.2f} {r['p90_ms']:8.2f} {r['p99_ms']:8.2f} "
                     f"{r['images_per_s']:8.1f}")
    return lines


def _predict_lines(predict_json):
    """One line per image predict.py named: the file's class folder (its true digit), the top
    class and its probability."""
    with open(predict_json) as f:
        rows = json.load(f)
    lines = ["held-out images named by predict.py (true digit = the image's folder):"]
    for r in rows:
        truth = os.path.basename(os.path.dirname(r["image"]))
        if r["error"]:
            lines.append(f"  {truth}/{os.path.basename(r['image'])}: {r['error']}")
            continue
        best = r["top"][0]
        lines.append(f"  true {truth}  predicted {best['name']} ({100 * best['score']:.1f}%)  "
                     f"{os.path.basename(r['image'])}")
    return lines


def _steps(train_dir):
    """Training steps of a run: the steps per epoch its step rows give, over its epochs."""
    per_epoch = {}
    with open(os.path.join(train_dir, "metrics.jsonl")) as f:
        for row in map(json.loads, filter(str.strip, f)):
            if row.get("kind") == "step":
                per_epoch[row["epoch"]] = row["steps"]
    return sum(per_epoch.values())


def _last_eval(train_dir):
    rows = [e for e in _epochs(train_dir) if e.get("box_ap") is not None]
    return rows[-1] if rows else None


def detection_lines(detection_dir):
    """The detection stage's lines (``scripts/demo_detection.py``): held-out COCO mAP of the
    detector trained from scratch and from the classifier's backbone, their steps, and what
    detect.py found in a few held-out images."""
    lines = ["detection (faster_rcnn_fpn_resnest_tiny on the composed set, held-out COCO mAP "
             "by pycocotools):"]
    for start in ("scratch", "pretrained"):
        folder = os.path.join(detection_dir, start)
        last = _last_eval(folder)
        with open(os.path.join(folder, "config.json")) as f:
            config = json.load(f)
        steps = _steps(folder)
        what = "from scratch" if start == "scratch" else "from the digits classifier"
        lines.append(f"  {what:27s} box AP {last['box_ap']:6.2f}  AP50 {last['box_ap50']:6.2f}"
                     f"  on {last['val_samples']} images after {len(_epochs(folder))} epochs"
                     + (f", {steps} steps" if steps else "")
                     + f" ({config['train_samples']} training images)")
    with open(os.path.join(detection_dir, "detect.json")) as f:
        rows = json.load(f)
    for r in rows:
        found = ", ".join(f"{o['name']} {100 * o['score']:.0f}%" for o in r["objects"])
        lines.append(f"  {os.path.basename(r['image'])}: {found or 'nothing above the threshold'}")
    lines.append(f"  pictures      {os.path.join(detection_dir, 'pictures')}")
    return lines


def _segmentation_lines(seg):
    """The segmentation stage: held-out mIoU / pixAcc of each start (the last epoch's
    validation in its metrics.jsonl), the steps each trained (its config.json), the overlay
    pictures (segment.py's)."""
    lines = []
    for start, files in seg["runs"].items():
        scored = _epochs(files["train_dir"])[-1]
        with open(os.path.join(files["train_dir"], "config.json")) as f:
            config = json.load(f)
        if not lines:
            lines.append(f"segmentation ({seg['model']} on the composed set {seg['data']}: "
                         f"{config['train_samples']} training images, {config['num_epochs']} "
                         f"epochs x {config['steps_per_epoch']} steps of "
                         f"{config['batch_size']} x {config['workers']} images):")
        lines.append(f"  backbone from {start:16s}: held-out mIoU {scored['mIoU']:6.2f}%  "
                     f"pixAcc {scored['pixAcc']:6.2f}%  on {scored['val_samples']} images")
    overlays = sorted(n for n in os.listdir(seg["segment"]) if n.endswith(".overlay.jpg"))
    lines += [f"  overlay (segment.py)  {os.path.join(seg['segment'], n)}" for n in overlays]
    return lines


def demo_report(run_dir, train_dir, verify_json, bench_json=None, total_s=None, train_s=None,
                predict_json=None, segmentation=None, detection_dir=None):
    """The text of the final report of ``scripts/demo.py``; ``segmentation``: the files of
    its segmentation stage (``demo.segmentation_stage``), if it ran; ``detection_dir``: the
    detection stage's folder, if it ran."""
    epochs = _epochs(train_dir)
    last = epochs[-1]
    with open(verify_json) as f:
        verify = json.load(f)
    with open(os.path.join(train_dir, "config.json")) as f:
        config = json.load(f)
    evaluated = [e for e in epochs if e.get("top1") is not None]
    lines = [
        "=" * 72,
        f"ResNeSt demo report   run folder: {run_dir}",
        "=" * 72,
        f"model {verify['model']} at {verify['crop_size']}x{verify['crop_size']}, "
        f"{len(epochs)} epochs on {config['train_samples']} training images "
        f"({config['workers']} ranks, {last['samples']} samples per epoch incl. wrap-around)",
        f"held-out digits (verify.py): top-1 {verify['top1']:.2f}%  top-5 {verify['top5']:.2f}%"
        f"  on {verify['images']} images",
    ]
    if evaluated:
        lines.append(f"during training (last eval, epoch {evaluated[-1]['epoch']}): top-1 "
                     f"{evaluated[-1]['top1']:.2f}% on {evaluated[-1]['val_samples']} images")
    mean_ips = sum(e["img_per_sec"] for e in epochs[1:] or epochs) / len(epochs[1:] or epochs)
    lines += [
        f"training throughput: {last['img_per_sec']:.1f} img/s in the last epoch, "
        f"{mean_ips:.1f} img/s mean after the first (all ranks)",
        f"verify throughput: model only {verify['model_images_per_s']:.1f} img/s, end to end "
        f"{verify['end_to_end_images_per_s']:.1f} img/s",
    ]
    if predict_json:
        lines += _predict_lines(predict_json)
    if bench_json:
        lines.append("inference per engine and dtype (benchmark.py: top-1 on the held-out "
                     "digits, model-only latency):")
        lines += _benchmark_lines(bench_json)
    if segmentation:
        lines += _segmentation_lines(segmentation)
    if detection_dir:
        lines += detection_lines(detection_dir)
    if train_s is not None and total_s is not None:
        lines.append(f"time: training {train_s / 60:.1f} min, whole demo {total_s / 60:.1f} min")
    lines += [
        "files:",
        f"  checkpoints   {train_dir}/imagenet-{verify['model']}-<epoch>.params/.states/.json",
        f"  log, metrics  {train_dir}/train.log, {train_dir}/metrics.jsonl",
        f"  config        {train_dir}/config.json",
        f"  curves        {train_dir}/curves.png",
        f"  verify        {verify_json}",
    ]
    if predict_json:
        lines.append(f"  predictions   {predict_json}")
    if bench_json:
        lines.append(f"  benchmark     {bench_json}")
        chart = os.path.join(run_dir, "accuracy_latency.png")
        if os.path.exists(chart):
            lines.append(f"  chart         {chart}")
    return "\n".join(lines)
