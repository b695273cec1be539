"""scripts/gluon/evaluate_detection.py end to end: COCO mAP over a COCO-format folder, the
same on one rank and on two (an odd image count, each image once), and bad input in one
sentence.

Expected values: pycocotools' ``COCOeval`` run here on the detections of the network run by
hand on GluonCV's evaluation transform (test_scripts_detect's ``_expected``), written as
GluonCV's COCO metric writes them (``[x, y, x2 - x + 1, y2 - y + 1]``); the annotations are
made from some of those detections, so the mAP is far from 0 and every image is scored."""
import contextlib
import io
import json
import os
import subprocess

import numpy as np
import pytest
from PIL import Image

from _runs import HOROVODRUN, PY, env
from conftest import REPO
from test_scripts_detect import _detector, _expected

from resnest.gluon.utils.errors import UserError

pytest.importorskip("pycocotools")
SCRIPT = os.path.join(REPO, "scripts", "gluon", "evaluate_detection.py")
MODEL = "faster_rcnn_fpn_resnest_tiny"
NAMES = ["circle", "square", "star"]


def _coco_box(box):
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1 + 1, y2 - y1 + 1]


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """Five real-pixel images (skimage's photos, cropped), a tiny detector of three classes,
    the annotations made from its best detection of two classes per image (plus one image
    without annotations) and the result rows computed by hand."""
    from skimage import data as photos
    root = tmp_path_factory.mktemp("evaluate")
    images = root / "images"
    images.mkdir()
    sources = [photos.astronaut(), photos.chelsea(), photos.coffee(), photos.rocket(),
               photos.astronaut()[100:400, 50:450]]
    weights = _detector(MODEL, NAMES, str(root / "det.params"))
    coco = {"images": [], "annotations": [],
            "categories": [{"id": 10 + k, "name": n} for k, n in enumerate(NAMES)]}
    rows = []
    for k, pixels in enumerate(sources):
        name = f"photo{k}.png"
        picture = Image.fromarray(pixels).convert("RGB")
        picture = picture.resize((picture.width * 96 // picture.height, 96), Image.BILINEAR)
        picture.save(images / name)
        coco["images"].append({"id": k + 1, "file_name": name, "width": picture.width,
                               "height": picture.height})
        found, _ = _expected(MODEL, weights, NAMES, str(images / name), 0.05)
        for label, score, box in found:
            rows.append({"image_id": k + 1, "category_id": 10 + NAMES.index(label),
                         "bbox": _coco_box(box), "score": score})
        if k == 4:
            continue                                   # kept without annotations
        for label in NAMES[k % 3], NAMES[(k + 1) % 3]:
            best = next((b for n, _, b in found if n == label), None)
            if best is not None:
                x, y, w, h = _coco_box(best)          # inside the image (edge boxes: +1)
                bbox = [x, y, min(w, picture.width - x), min(h, picture.height - y)]
                coco["annotations"].append({"id": len(coco["annotations"]) + 1,
                                            "image_id": k + 1, "iscrowd": 0,
                                            "category_id": 10 + NAMES.index(label),
                                            "bbox": bbox, "area": bbox[2] * bbox[3]})
    annotations = root / "instances.json"
    annotations.write_text(json.dumps(coco))
    return {"root": root, "images": images, "annotations": annotations, "weights": weights,
            "coco": coco, "rows": rows}


def _pycocotools_ap(annotations, rows):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(annotations))
        evaluation = COCOeval(truth, truth.loadRes(rows), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return [100 * v for v in evaluation.stats[:3]]


def _main(*args):
    import importlib.util
    spec = importlib.util.spec_from_file_location("evaluate_detection_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([str(a) for a in args])


def _args(case, annotations=None):
    return ["--model", MODEL, "--resume", case["weights"], "--annotations",
            annotations or case["annotations"], "--images", case["images"], "-j", "0"]


def test_one_rank_and_two_give_pycocotools_map_of_every_image(case, tmp_path):
    want = _pycocotools_ap(case["annotations"], case["rows"])
    assert want[1] > 10, "the check needs a mAP far from 0"
    one, two = tmp_path / "one.json", tmp_path / "two.json"
    assert _main(*_args(case), "--json", one) == 0
    proc = subprocess.run([HOROVODRUN, "-np", "2", "--gloo", PY, SCRIPT,
                           *map(str, _args(case)), "--json", str(two)], env=env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for path, shares in ((one, [5]), (two, [2, 3])):
        summary = json.load(open(path))
        assert summary["images"] == 5 and sorted(summary["per_rank_images"]) == shares
        assert summary["detections"] == len(case["rows"])
        assert summary["images_without_annotations"] == 1
        got = [summary["bbox"][k] for k in ("AP", "AP50", "AP75")]
        assert np.allclose(got, want, atol=1e-3), (got, want)
    assert "box AP" in proc.stdout


def _edited(case, tmp_path, edit):
    coco = json.loads(json.dumps(case["coco"]))
    edit(coco)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(coco))
    return path


def test_bad_input_is_one_sentence(case, tmp_path):
    def outside(coco):
        coco["annotations"][0]["bbox"][0] = coco["images"][0]["width"] - 2.0
    def unknown(coco):
        coco["annotations"][0]["category_id"] = 77
    def renamed(coco):
        coco["categories"][0]["name"] = "cat"
    def no_boxes(coco):
        coco["annotations"] = []
    for edit, words in ((outside, "pixel outside its image"), (unknown, "category 77"),
                        (renamed, "does not detect the categories"),
                        (no_boxes, "has no annotations")):
        with pytest.raises(UserError, match=words):
            _main(*_args(case, _edited(case, tmp_path, edit)))


def test_an_image_of_another_size_is_one_sentence(case, tmp_path):
    import shutil
    images = tmp_path / "images"
    shutil.copytree(case["images"], images)
    Image.open(images / "photo3.png").resize((50, 40)).save(images / "photo3.png")
    args = _args(case)
    args[args.index("--images") + 1] = images
    with pytest.raises(UserError, match="photo3.png is 50x40 but .* says"):
        _main(*args)


def test_a_file_of_another_model_is_one_sentence(case, tmp_path):
    other = _detector("mask_rcnn_fpn_resnest_tiny", NAMES, str(tmp_path / "mask.params"))
    args = _args(case)
    args[args.index("--resume") + 1] = other
    with pytest.raises(UserError, match="holds mask_rcnn_fpn_resnest_tiny weights, not"):
        _main(*args)
    args[args.index("--model") + 1] = "resnest_tiny"
    with pytest.raises(UserError, match="is a classification model, not a detector"):
        _main(*args)
