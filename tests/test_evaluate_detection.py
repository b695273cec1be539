"""The detection evaluator against pycocotools' ``COCOeval`` run directly on the same result
files (hand-made detections on the composed set's annotations: perfect, shifted, with masks),
GluonCV's mask pasting (``mask.fill``), and the class-to-category rules."""
import contextlib
import io
import json

import mxnet as mx
import numpy as np
import pytest

from resnest.gluon.data.coco import CocoSamples
from resnest.gluon.data.composed import coco_paths, write_composed
from resnest.gluon.data.det_samples import DetectionSamples
from resnest.gluon.data.det_transforms import DetectionEvalSample
from resnest.gluon.data.detection import (ImageDetections, detection_eval_transform,
                                          image_detections, paste_masks)
from resnest.gluon.data.loaders import eval_loader
from resnest.gluon.evaluate.detection import (category_map, coco_metrics, evaluate_detection,
                                              result_rows)
from resnest.gluon.utils.errors import UserError
from _errors import one_sentence

pytest.importorskip("pycocotools")


@pytest.fixture(scope="module")
def val(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("composed") / "set")
    write_composed(root, size=128, train_images=2, val_images=7, seed=2, objects=(2, 5),
                   object_size=(20, 60))
    return CocoSamples(*coco_paths(root, "val"))


def _direct(val, rows, tmp_path, iou_type="bbox"):
    """COCOeval's stats on ``rows`` written to a results file, pycocotools only."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    path = str(tmp_path / f"results_{iou_type}.json")
    json.dump(rows, open(path, "w"))
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(val.annotation_file)
        e = COCOeval(gt, gt.loadRes(path), iou_type)
        e.evaluate()
        e.accumulate()
        e.summarize()
    return e.stats


def _perfect(val, shift=0.0, drop_every=0):
    """Every annotation as a detection of its category, score by rank, corners in GluonCV's
    convention (x2 = x + w - 1), moved ``shift`` px right (and kept inside the 128-px
    image), every ``drop_every``-th left out."""
    by_image = {}
    for k, ann in enumerate(val.coco.dataset["annotations"]):
        if drop_every and k % drop_every == 0:
            continue
        x, y, w, h = ann["bbox"]
        by_image.setdefault(ann["image_id"], []).append(
            (val.label_of[ann["category_id"]], 1.0 - 0.01 * len(by_image),
             [min(x + shift, 128), y, min(x + w - 1 + shift, 128), y + h - 1]))
    return by_image


def _rows(val, by_image):
    rows = []
    for image_id, dets in by_image.items():
        labels, scores, boxes = zip(*dets)
        rows += result_rows(image_id, ImageDetections(np.array(labels), np.array(scores),
                                                      np.array(boxes)), val.cat_ids)
    return rows


def test_perfect_detections_score_100_and_equal_cocoeval(val, tmp_path):
    rows = _rows(val, _perfect(val))
    ours = coco_metrics(val, rows)
    assert ours["AP"] == ours["AP50"] == ours["AP75"] == 100.0
    assert set(ours["per_class"].values()) <= {100.0, None}
    np.testing.assert_allclose([ours[k] for k in ("AP", "AP50", "AP75")],
                               100 * _direct(val, rows, tmp_path)[:3])
    # The GluonCV convention round-trips: each row's box is its annotation's box.
    want = sorted(tuple(a["bbox"]) for a in val.coco.dataset["annotations"])
    np.testing.assert_allclose(sorted(tuple(r["bbox"]) for r in rows), want, atol=1e-9)


@pytest.mark.parametrize("shift,drop", [(3.0, 0), (9.0, 0), (2.0, 3)])
def test_shifted_and_missing_detections_score_what_cocoeval_says(val, tmp_path, shift, drop):
    rows = _rows(val, _perfect(val, shift, drop))
    ours = coco_metrics(val, rows)
    stats = _direct(val, rows, tmp_path)
    got = [ours[k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")]
    want = [None if s < 0 else 100 * s for s in stats[:6]]
    for g, w in zip(got, want):
        assert (g is None and w is None) or g == pytest.approx(w, abs=1e-3)
    assert 0 < ours["AP"] < 100


def test_no_detections_score_zero():
    class Coco:                                   # the two facts coco_metrics reads
        cat_ids = [1, 2]

        class coco:
            dataset = {"annotations": [{"id": 1}]}
            cats = {1: {"name": "a"}, 2: {"name": "b"}}
    out = coco_metrics(Coco, [])
    assert out["AP"] == 0.0 and out["per_class"] == {"a": 0.0, "b": 0.0}


def test_masks_are_scored_as_cocoeval_scores_them(val, tmp_path):
    from pycocotools import mask as mask_util
    rows = []
    for ann in val.coco.dataset["annotations"]:
        mask = val.coco.annToMask(ann)
        if ann["id"] % 2:
            mask = np.roll(mask, 4, axis=1)                     # a worse half
        rle = mask_util.encode(np.asfortranarray(mask))
        rows.append({"image_id": ann["image_id"], "category_id": ann["category_id"],
                     "score": 0.9, "segmentation": {"size": [int(v) for v in rle["size"]],
                                                    "counts": rle["counts"].decode("ascii")}})
    ours = coco_metrics(val, rows, "segm")
    assert ours["AP"] == pytest.approx(100 * _direct(val, rows, tmp_path, "segm")[0], abs=1e-3)
    assert 0 < ours["AP"] < 100


def test_pasted_masks_are_gluoncvs_fill():
    from gluoncv.data.transforms.mask import fill
    rng = np.random.RandomState(0)
    masks = rng.uniform(size=(5, 28, 28)).astype(np.float32)
    boxes = np.array([[10.2, 5.7, 60.9, 40.1], [-8, -3, 30, 20], [70, 50, 130, 99],
                      [0, 0, 119, 99], [33.3, 44.4, 34.5, 46.0]])
    np.testing.assert_array_equal(paste_masks(masks, boxes, 100, 120),
                                  fill(masks, boxes, (120, 100)))


def test_image_detections_drop_suppressed_rows_and_restore_boxes():
    ids = np.array([[1], [-1], [0], [2]], np.float32)
    scores = np.array([[0.3], [0.9], [0.8], [0.04]], np.float32)
    boxes = np.array([[10, 10, 20, 20], [0, 0, 1, 1], [-5, 2, 300, 40], [1, 1, 2, 2]],
                     np.float32)
    dets = image_detections((ids, scores, boxes), 2.0, (100, 150), (200, 300), 0.05)
    assert dets.labels.tolist() == [0, 1] and dets.scores.tolist() == pytest.approx([0.8, 0.3])
    np.testing.assert_allclose(dets.boxes, [[0, 4, 300, 80], [20, 20, 40, 40]])
    assert dets.masks is None


def test_classes_must_be_the_files_categories(val):
    names = [val.coco.cats[c]["name"] for c in val.cat_ids]
    assert category_map(names[::-1], val) == val.cat_ids[::-1]
    with pytest.raises(UserError) as err:
        category_map(names[:-1], val)
    one_sentence(err, val.annotation_file, repr(names[-1]))
    with pytest.raises(UserError) as err:
        category_map(names + ["cat"], val)
    one_sentence(err, "'cat'", "not categories of the file")


class _Replay:
    """A stand-in detector that answers the i-th call with the i-th prepared output."""

    def __init__(self, outputs):
        self.outputs, self.calls = outputs, 0

    def __call__(self, data):
        out = self.outputs[self.calls]
        self.calls += 1
        return [mx.nd.array(a[None]) for a in out]


def test_evaluate_detection_through_the_loader_gives_cocoevals_figures(val, tmp_path):
    samples = DetectionSamples(val, training=False)
    transform = detection_eval_transform(short=96, max_size=96)         # 128 -> 96
    by_image = _perfect(val, shift=2.0, drop_every=4)
    outputs = []
    for position in range(len(samples)):
        dets = by_image.get(samples.image_id(position), [])
        n = max(1, len(dets))
        ids, scores, boxes = np.full((n, 1), -1.0), np.zeros((n, 1)), np.zeros((n, 4))
        for k, (label, score, box) in enumerate(dets):
            ids[k], scores[k], boxes[k] = label, score, np.array(box) * 96 / 128
        outputs.append((ids, scores, boxes))
    loader = eval_loader(samples, 1, DetectionEvalSample(transform), num_workers=0)
    names = [val.coco.cats[c]["name"] for c in val.cat_ids]
    result = evaluate_detection(_Replay(outputs), loader, samples, names, score_thresh=0.0)
    want = _direct(val, _rows(val, by_image), tmp_path)
    assert result.images == len(samples) and result.per_rank_images == [len(samples)]
    assert result.bbox["AP"] == pytest.approx(100 * want[0], abs=1e-3)
    assert result.bbox["AP50"] == pytest.approx(100 * want[1], abs=1e-3)
    assert result.segm is None and result.metrics()["box_ap"] == result.bbox["AP"]
