"""scripts/gluon/detect.py end to end: the boxes, names and masks it reports for real-pixel
images, its pictures, its refusals, and an unreadable file (one line, exit code 1).

Expected values: the network run by hand on GluonCV's own evaluation transform
(``FasterRCNNDefaultValTransform``), its boxes clipped and scaled back as GluonCV's evaluation
does (written out here), Mask R-CNN's masks pasted by GluonCV's ``mask.fill``; COCO's class
names from GluonCV's ``COCODetection.CLASSES``; the checkpoints' records for their names."""
import json
import os
import subprocess

import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from _runs import PY, env

from resnest.gluon import get_model
from resnest.gluon.checkpoint import CheckpointRecord, write_weights
from resnest.gluon.utils.errors import UserError

SCRIPT = os.path.join(REPO, "scripts", "gluon", "detect.py")
SIZE = {"short": 96, "max_size": 128}


def _detector(model, names, path, record=True):
    mx.random.seed(3)
    net = get_model(model, classes=names)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 96, 96)))
    if record:
        task = "detection" if model.startswith("faster") else "instance-segmentation"
        write_weights(path, CheckpointRecord(model, epoch=0, task=task, class_names=names,
                                             eval=dict(SIZE)), net.save_parameters)
    else:
        net.save_parameters(path)
    return path


@pytest.fixture(scope="module")
def case(tmp_path_factory):
    """Three composed real-pixel images as PNG (one decoder for both sides; one of them
    150x120, which the input resizes by 0.8), and checkpoints of the tiny Faster and Mask
    R-CNN with the set's ten classes."""
    from resnest.gluon.data.composed import coco_paths, write_composed
    root = tmp_path_factory.mktemp("detect")
    write_composed(str(root / "set"), size=96, train_images=1, val_images=3, seed=1,
                   objects=(1, 3), object_size=(24, 48))
    annotations, folder = coco_paths(str(root / "set"), "val")
    images = root / "images"
    images.mkdir()
    for k, name in enumerate(sorted(os.listdir(folder))):
        picture = Image.open(os.path.join(folder, name)).convert("RGB")
        if k == 1:
            picture = picture.resize((150, 120), Image.BILINEAR)
        picture.save(images / (os.path.splitext(name)[0] + ".png"))
    names = [c["name"] for c in sorted(json.load(open(annotations))["categories"],
                                       key=lambda c: c["id"])]
    return {"images": images, "names": names, "root": root,
            "faster": _detector("faster_rcnn_fpn_resnest_tiny", names,
                                str(root / "faster.params")),
            "mask": _detector("mask_rcnn_fpn_resnest_tiny", names, str(root / "mask.params"))}


def _main(*args):
    """detect.py's main() in this process (its exit code; a UserError is raised)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("detect_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main([str(a) for a in args])


def _expected(model, weights, names, path, threshold):
    """GluonCV's evaluation of one image by hand: its transform, the network, the kept rows
    clipped to the resized image and multiplied by its scale (masks: GluonCV's fill)."""
    from gluoncv.data.transforms import mask as gcv_mask
    from gluoncv.data.transforms.presets.rcnn import FasterRCNNDefaultValTransform
    net = get_model(model, classes=names)
    net.load_parameters(weights)
    src = mx.nd.array(np.asarray(Image.open(path).convert("RGB")), dtype="uint8")
    x, _, scale = FasterRCNNDefaultValTransform(SIZE["short"], SIZE["max_size"])(
        src, mx.nd.zeros((1, 5)))
    outputs = [o[0].asnumpy() for o in net(x.expand_dims(0))]
    ids, scores, boxes = outputs[0].ravel(), outputs[1].ravel(), outputs[2].astype(np.float64)
    keep = (ids >= 0) & (scores >= threshold)
    height, width = x.shape[1:]
    boxes = boxes[keep]
    boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, width)
    boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, height)
    boxes *= scale.asscalar()
    rows = [(names[int(i)], float(s), b) for i, s, b in zip(ids[keep], scores[keep], boxes)]
    pixels = None
    if len(outputs) > 3:
        full = gcv_mask.fill(outputs[3][keep], boxes, (src.shape[1], src.shape[0]))
        pixels = [int(m.sum()) for m in full]
    return rows, pixels


def _match(got, want, want_pixels):
    """Every expected detection found once among ``got`` (JSON rows) with the same name,
    score and box (to the JSON's rounding) and mask size."""
    assert len(got) == len(want)
    free = list(range(len(got)))
    for k, (name, score, box) in enumerate(want):
        hits = [j for j in free if got[j]["name"] == name and
                abs(got[j]["score"] - score) < 2e-6 and
                np.allclose(got[j]["box"], box, atol=0.011) and
                (want_pixels is None or got[j]["mask_pixels"] == want_pixels[k])]
        assert hits, f"{name} {score} {box} not reported"
        free.remove(hits[0])


@pytest.mark.parametrize("kind", ["faster", "mask"])
def test_detections_are_the_networks_on_gluoncvs_input(case, kind, tmp_path):
    model = f"{kind}_rcnn_fpn_resnest_tiny"
    out = tmp_path / "boxes.json"
    assert _main("--model", model, "--resume", case[kind], "--threshold", "0.05", "--json",
                 out, "-j", "0", case["images"]) == 0
    rows = json.load(open(out))
    files = sorted(os.listdir(case["images"]))
    assert [os.path.basename(r["image"]) for r in rows] == files
    for row, name in zip(rows, files):
        path = case["images"] / name
        assert (row["width"], row["height"]) == Image.open(path).size
        want, pixels = _expected(model, case[kind], case["names"], str(path), 0.05)
        assert want, "the check needs detections above the threshold"
        _match(row["objects"], want, pixels)
        scores = [o["score"] for o in row["objects"]]
        assert scores == sorted(scores, reverse=True)


def test_threshold_csv_and_pictures(case, tmp_path, capsys):
    pictures, table = tmp_path / "pictures", tmp_path / "boxes.csv"
    image = case["images"] / sorted(os.listdir(case["images"]))[0]
    assert _main("--model", "faster_rcnn_fpn_resnest_tiny", "--resume", case["faster"],
                 "--threshold", "0.09", "--csv", table, "--draw", pictures, "-j", "0",
                 image) == 0
    want, _ = _expected("faster_rcnn_fpn_resnest_tiny", case["faster"], case["names"],
                        str(image), 0.09)
    assert want, "the check needs detections above the threshold"
    lines = open(table).read().splitlines()
    assert lines[0].split(",")[:7] == ["image", "error", "height", "width", "index", "name",
                                       "score"]
    assert len(lines) == 1 + len(want)
    assert all(float(line.split(",")[6]) >= 0.09 for line in lines[1:])
    drawn = Image.open(pictures / (image.stem + ".boxes.jpg"))
    assert drawn.size == Image.open(image).size
    # The best box's left edge is drawn in a class colour: it differs from the image.
    _, _, (x1, y1, x2, y2) = want[0]
    column = np.asarray(drawn.convert("RGB"), np.float64)[int(y1) + 3:int(y2), int(x1)]
    original = np.asarray(Image.open(image).convert("RGB"), np.float64)[
        int(y1) + 3:int(y2), int(x1)]
    assert np.abs(column - original).mean() > 20


def test_a_picture_is_not_replaced_without_force(case, tmp_path):
    pictures = tmp_path / "p"
    image = case["images"] / sorted(os.listdir(case["images"]))[0]
    args = ("--model", "faster_rcnn_fpn_resnest_tiny", "--resume", case["faster"], "--draw",
            pictures, "-j", "0", image)
    assert _main(*args) == 0
    with pytest.raises(UserError, match="already exists; pass --force"):
        _main(*args)
    assert _main(*args, "--force") == 0


def test_a_bare_file_of_80_classes_names_cocos_and_needs_its_size(case, tmp_path):
    from gluoncv.data import COCODetection
    from resnest.gluon.inference.load_detection import load_detector
    from resnest.gluon.classes import published_classes
    path = _detector("faster_rcnn_fpn_resnest_tiny", published_classes("coco").names,
                     str(tmp_path / "bare.params"), record=False)
    assert load_detector("faster_rcnn_fpn_resnest_tiny", path).class_names == \
        list(COCODetection.CLASSES)
    with pytest.raises(UserError, match="has no record beside it.*pass --short"):
        _main("--model", "faster_rcnn_fpn_resnest_tiny", "--resume", path, case["images"])
    out = tmp_path / "o.json"
    assert _main("--model", "faster_rcnn_fpn_resnest_tiny", "--resume", path, "--short", "96",
                 "--threshold", "0", "--json", out, "-j", "0", case["images"]) == 0
    names = {o["name"] for r in json.load(open(out)) for o in r["objects"]}
    assert names and names <= set(COCODetection.CLASSES)


def test_refusals(case, tmp_path):
    base = ("--resume", case["faster"], case["images"])
    with pytest.raises(UserError, match="mxnet engine in float32 only"):
        _main("--model", "faster_rcnn_fpn_resnest_tiny", "--backend", "onnxruntime", *base)
    with pytest.raises(UserError, match="holds faster_rcnn_fpn_resnest_tiny weights, not "
                                        "mask_rcnn_fpn_resnest_tiny"):
        _main("--model", "mask_rcnn_fpn_resnest_tiny", *base)
    with pytest.raises(UserError, match="is a classification model, not a detector"):
        _main("--model", "resnest_tiny", *base)
    classifier = get_model("resnest_tiny", classes=10)
    classifier.initialize()
    classifier(mx.nd.zeros((1, 3, 32, 32)))
    classifier.save_parameters(str(tmp_path / "c.params"))
    with pytest.raises(UserError, match="has no class_predictor.weight"):
        _main("--model", "faster_rcnn_fpn_resnest_tiny", "--resume", tmp_path / "c.params",
              "--short", "96", case["images"])


def test_an_unreadable_image_is_one_line_and_exit_code_1(case, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a picture")
    out = tmp_path / "o.json"
    proc = subprocess.run([PY, SCRIPT, "--model", "faster_rcnn_fpn_resnest_tiny", "--resume",
                           case["faster"], "--json", str(out), "-j", "0",
                           str(case["images"]), str(bad)],
                          env=env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if "broken.jpg" in line]
    assert len(lines) == 1 and lines[0].startswith(f"cannot detect in {bad}: ")
    assert "Traceback" not in proc.stderr
    rows = json.load(open(out))
    assert [r["error"] is None for r in rows] == [True, True, True, False]
