"""The COCO reader against pycocotools (the reference reader: its own ``COCO(path)``,
``annToMask``, ``COCOeval``), and every bad input refused in one sentence naming the file and
the record."""
import contextlib
import copy
import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from resnest.gluon.data.coco import BOX_TOLERANCE, CocoSamples
from resnest.gluon.utils.errors import UserError
from _errors import one_sentence

mask_util = pytest.importorskip("pycocotools.mask")
CATS = (1, 3, 7)           # non-contiguous ids, as COCO's 1..90 with 80 used


def _regions(img, count):
    """``count`` real-photo regions: connected blobs of a grey-level band."""
    from scipy import ndimage
    grey = img.mean(axis=2)
    blobs, n = ndimage.label((grey > 90) & (grey < 170))
    sizes = np.bincount(blobs.ravel())[1:]
    return [blobs == 1 + k for k in np.argsort(-sizes)[:count]]


def _annotation(ann_id, image_id, cat, mask, crowd=0):
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"id": ann_id, "image_id": image_id, "category_id": cat, "iscrowd": crowd,
            "bbox": [float(v) for v in mask_util.toBbox(rle)], "area": float(mask_util.area(rle)),
            "segmentation": {"size": list(rle["size"]), "counts": rle["counts"].decode()}}


@pytest.fixture
def coco_dir(tmp_path):
    """Three real photos with blob annotations (one polygon, one crowd region, one zero-width
    box) and a fourth photo without annotations; returns ``(json path, image folder, dict)``."""
    import skimage.data
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    photos = [skimage.data.astronaut()[:96, :128], skimage.data.coffee()[:80, :120],
              skimage.data.chelsea()[:100, :90], skimage.data.rocket()[:64, :64]]
    data = {"images": [], "annotations": [], "categories": [
        {"id": c, "name": f"thing{c}", "supercategory": "x"} for c in CATS]}
    for i, img in enumerate(photos):
        image_id = 10 + 5 * i                              # ids are not positions
        Image.fromarray(np.ascontiguousarray(img)).save(images_dir / f"im{i}.jpg", quality=95)
        data["images"].append({"id": image_id, "file_name": f"im{i}.jpg",
                               "height": img.shape[0], "width": img.shape[1]})
        if i == 3:
            continue                                       # no annotations: legitimate
        for k, mask in enumerate(_regions(img, 3)):
            data["annotations"].append(_annotation(100 + len(data["annotations"]), image_id,
                                                   CATS[(i + k) % 3], mask, crowd=int(k == 2)))
    poly = {"id": 500, "image_id": 10, "category_id": 3, "iscrowd": 0, "area": 300.0,
            "bbox": [10.0, 20.0, 30.0, 20.0],
            "segmentation": [[10.0, 20.0, 40.0, 20.0, 40.0, 40.0, 10.0, 40.0]]}
    flat = dict(poly, id=501, bbox=[5.0, 5.0, 0.0, 4.0], area=0.0,
                segmentation=[[5.0, 5.0, 5.0, 9.0, 5.0, 9.0]])
    data["annotations"] += [poly, flat]
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return str(path), str(images_dir), data


def _reference(path):
    from pycocotools.coco import COCO
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(path)


def test_reads_what_pycocotools_reads(coco_dir):
    path, images_dir, data = coco_dir
    ref = _reference(path)
    samples = CocoSamples(path, images_dir)
    assert samples.image_ids == sorted(ref.getImgIds()) and len(samples) == 4
    assert samples.classes == [c["name"] for c in ref.loadCats(sorted(ref.getCatIds()))]
    for i, image_id in enumerate(samples.image_ids):
        anns = ref.loadAnns(ref.getAnnIds(imgIds=[image_id]))
        img, target = samples.read(i)
        want_img = np.asarray(Image.open(os.path.join(images_dir,
                                                      ref.imgs[image_id]["file_name"])))
        assert img.shape == want_img.shape
        assert np.abs(img.astype(int) - want_img).max() <= 2   # two libjpeg builds
        np.testing.assert_array_equal(target.boxes, np.array([a["bbox"] for a in anns],
                                                             np.float32).reshape(-1, 4))
        assert target.labels.tolist() == [CATS.index(a["category_id"]) for a in anns]
        assert target.iscrowd.tolist() == [bool(a["iscrowd"]) for a in anns]
        assert target.ann_ids.tolist() == [a["id"] for a in anns]
        masks = samples.masks(i)
        assert masks.shape == (len(anns),) + img.shape[:2]
        for mask, ann in zip(masks, anns):
            np.testing.assert_array_equal(mask, ref.annToMask(ann))


def test_empty_image_is_kept_counted_and_reported(coco_dir):
    path, images_dir, _ = coco_dir
    samples = CocoSamples(path, images_dir)
    assert samples.empty_image_ids == [25]
    index = samples.image_ids.index(25)
    img, target = samples.read(index)
    assert target.boxes.shape == (0, 4) and target.labels.shape == (0,)
    assert samples.masks(index).shape == (0,) + img.shape[:2]
    report = samples.report()
    assert "images without annotations: 1" in report and "crowd regions: 3" in report
    assert "boxes of zero width or height: 1" in report and "4 images, 11 annotations" in report


def test_empty_image_counts_in_the_map_as_pycocotools_scores_it(coco_dir):
    """What keeping it means: a confident detection on the empty image lowers COCOeval's AP;
    leaving the image out would report a perfect (wrong) AP."""
    from pycocotools.cocoeval import COCOeval
    path, images_dir, _ = coco_dir
    samples = CocoSamples(path, images_dir)
    gts = [a for a in samples.coco.dataset["annotations"] if not a["iscrowd"]]
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "score": 0.5} for a in gts]
    false_positive = {"image_id": 25, "category_id": 1, "bbox": [1, 1, 30, 30], "score": 0.9}
    aps = []
    for image_ids, results in ((samples.image_ids, dets + [false_positive]),
                               ([i for i in samples.image_ids if i != 25], dets + [false_positive]),
                               (samples.image_ids, dets)):
        with contextlib.redirect_stdout(io.StringIO()):
            run = COCOeval(samples.coco, samples.coco.loadRes(copy.deepcopy(results)), "bbox")
            run.params.imgIds = image_ids
            run.evaluate()
            run.accumulate()
            run.summarize()
        aps.append(run.stats[1])                           # AP at IoU 0.5
    # without the empty image the false positive vanishes from the score
    assert aps[1] == aps[2] and aps[0] < aps[2] - 0.05, aps


def _mutated(coco_dir, change):
    path, images_dir, data = coco_dir
    data = copy.deepcopy(data)
    change(data)
    with open(path, "w") as fjson:
        json.dump(data, fjson)
    return path, images_dir


def _ann(data, ann_id):
    return next(a for a in data["annotations"] if a["id"] == ann_id)


def _widen_box(data, ann_id, overshoot):
    ann = _ann(data, ann_id)
    img = next(i for i in data["images"] if i["id"] == ann["image_id"])
    ann["bbox"][2] = img["width"] + overshoot - ann["bbox"][0]


BAD = {
    "box outside": (lambda d: _widen_box(d, 101, BOX_TOLERANCE + 0.5), ["annotation 101"]),
    "negative size": (lambda d: _ann(d, 102).__setitem__("bbox", [1, 1, -3, 4]),
                      ["annotation 102", "negative"]),
    "nan box": (lambda d: _ann(d, 102).__setitem__("bbox", [1, 1, float("nan"), 4]),
                ["annotation 102"]),
    "unknown category": (lambda d: _ann(d, 103).__setitem__("category_id", 2),
                         ["annotation 103", "category 2"]),
    "missing image": (lambda d: _ann(d, 104).__setitem__("image_id", 99),
                      ["annotation 104", "image 99"]),
    "duplicate image id": (lambda d: d["images"][1].__setitem__("id", 10), ["image id 10"]),
    "duplicate annotation id": (lambda d: _ann(d, 105).__setitem__("id", 100),
                                ["annotation id 100"]),
    "duplicate category id": (lambda d: d["categories"][1].__setitem__("id", 1),
                              ["category id 1"]),
    "duplicate file": (lambda d: d["images"][2].__setitem__("file_name", "im0.jpg"),
                       ["im0.jpg"]),
    "rle size": (lambda d: _ann(d, 100)["segmentation"].__setitem__("size", [5, 5]),
                 ["annotation 100", "[5, 5]"]),
    "no iscrowd": (lambda d: _ann(d, 106).pop("iscrowd"), ["annotation 106", "iscrowd"]),
    "no annotations": (lambda d: d.pop("annotations"), ["'annotations'"]),
    "missing file": (lambda d: d["images"][0].__setitem__("file_name", "gone.jpg"),
                     ["gone.jpg", "image 10"]),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_annotations_are_refused_in_one_sentence(coco_dir, case):
    change, names = BAD[case]
    path, images_dir = _mutated(coco_dir, change)
    with pytest.raises(UserError) as err:
        CocoSamples(path, images_dir)
    one_sentence(err, path if case != "missing file" else images_dir, *names)


def test_box_overshoot_within_the_tolerance_is_kept(coco_dir):
    path, images_dir = _mutated(coco_dir, lambda d: _widen_box(d, 101, BOX_TOLERANCE - 0.25))
    samples = CocoSamples(path, images_dir)
    assert len(samples.coco.anns) == 11


def test_invalid_json_is_refused(coco_dir):
    path, images_dir, _ = coco_dir
    with open(path, "a") as fjson:
        fjson.write(",")
    with pytest.raises(UserError) as err:
        CocoSamples(path, images_dir)
    one_sentence(err, path, "line 1")


def test_unreadable_image_and_wrong_size_are_refused_when_read(coco_dir):
    path, images_dir, data = coco_dir
    with open(os.path.join(images_dir, "im1.jpg"), "wb") as fimg:
        fimg.write(b"\xff\xd8 not really a jpeg")
    samples = CocoSamples(path, images_dir)
    with pytest.raises(UserError) as err:
        samples.read(1)
    one_sentence(err, os.path.join(images_dir, "im1.jpg"))
    path, images_dir = _mutated(coco_dir, lambda d: d["images"][3].__setitem__("width", 200))
    with pytest.raises(UserError) as err:
        CocoSamples(path, images_dir).read(3)
    one_sentence(err, os.path.join(images_dir, "im3.jpg"), "64x64", "200x64")
