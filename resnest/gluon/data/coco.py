"""COCO-format detection / instance-segmentation annotations, checked before they are used.

The file is parsed once, checked, and indexed by pycocotools' own :class:`~pycocotools.coco.COCO`
(the reference reader, and what ``COCOeval`` takes), so boxes, masks and the mAP all come from
the same records. Images are decoded by the project's one decoder
(:func:`~resnest.gluon.data.folder.decode_image`).

Refused with one sentence naming the file and the record (never skipped, which would silently
change the mAP): malformed JSON or records, duplicate image, annotation or category ids,
duplicate image file names, an annotation pointing at an image or category that is not in the
file, a box with a negative or non-finite size or more than :data:`BOX_TOLERANCE` pixels
outside its image, an RLE mask of another size than its image, an image file missing from the
image folder, and (when read) an unreadable image or one of another size than its record.

Kept and counted in :meth:`CocoSamples.report` (legitimate in COCO): images without any
annotation (in evaluation every detection on them is a false positive), crowd regions
(``iscrowd`` 1) and boxes of zero width or height.
"""
import contextlib
import io
import json
import math
import os
from typing import NamedTuple

import numpy as np

from ..utils.errors import UserError
from .folder import BadImage, decode_image

__all__ = ["CocoSamples", "CocoTarget", "BOX_TOLERANCE"]

# COCO coordinates are continuous over the image's [0, W] x [0, H]; boxes are derived from
# clicked polygon vertices, and a vertex placed on the border lands up to a fraction of a
# pixel beyond it. Overshoot beyond one whole pixel is not rounding: the box belongs to
# another image or another size of this one. (GluonCV and MMDetection clip any box silently.)
BOX_TOLERANCE = 1.0


class CocoTarget(NamedTuple):
    """The annotations of one image, in file order."""

    boxes: np.ndarray       # float32 (N, 4), COCO [x, y, w, h] in pixels, as in the file
    labels: np.ndarray      # int32 (N,), contiguous 0..K-1 in category-id order
    iscrowd: np.ndarray     # bool (N,)
    ann_ids: np.ndarray     # int64 (N,)


def _load(path):
    try:
        with open(path, "rb") as fjson:
            return json.loads(fjson.read().decode("utf-8"))
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror or err}.") from None
    except UnicodeDecodeError:
        raise UserError(f"{path} is not UTF-8 text; give a COCO annotation JSON file.") from None
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON (line {err.lineno}, column {err.colno}: "
                        f"{err.msg}).") from None


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _unique_ids(records, kind, path):
    seen = set()
    for record in records:
        if not isinstance(record, dict) or not _is_int(record.get("id")):
            raise UserError(f"{path}: {kind} record {str(record)[:60]} has no integer 'id'.")
        if record["id"] in seen:
            raise UserError(f"{path}: {kind} id {record['id']} appears twice; ids must be unique.")
        seen.add(record["id"])


def _check_images(images, path):
    _unique_ids(images, "image", path)
    names = {}
    for img in images:
        if not isinstance(img.get("file_name"), str) or not all(
                _is_int(img.get(k)) and img[k] > 0 for k in ("width", "height")):
            raise UserError(f"{path}: image {img['id']} needs a file_name and positive integer "
                            "width and height.")
        if img["file_name"] in names:
            raise UserError(f"{path}: images {names[img['file_name']]} and {img['id']} are both "
                            f"{img['file_name']}; each image file once.")
        names[img["file_name"]] = img["id"]


def _check_categories(categories, path):
    _unique_ids(categories, "category", path)
    names = [c.get("name") for c in categories]
    if not categories or not all(isinstance(n, str) for n in names) or len(set(names)) < len(names):
        raise UserError(f"{path}: the categories need distinct names (and there must be some).")


def _check_box(ann, img, path):
    box = ann.get("bbox")
    if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box):
        raise UserError(f"{path}: annotation {ann['id']} has no bbox of 4 finite numbers "
                        "[x, y, w, h].")
    x, y, w, h = box
    if w < 0 or h < 0:
        raise UserError(f"{path}: annotation {ann['id']} has a box of negative size {box}; "
                        "COCO boxes are [x, y, width, height].")
    tol = BOX_TOLERANCE
    if x < -tol or y < -tol or x + w > img["width"] + tol or y + h > img["height"] + tol:
        raise UserError(f"{path}: annotation {ann['id']} has the box {box}, more than {tol:g} "
                        f"pixel outside its image {img['file_name']} ({img['width']}x"
                        f"{img['height']}).")


def _check_segmentation(ann, img, path):
    segm = ann.get("segmentation")
    if segm is None or isinstance(segm, list):
        if segm is not None and not all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0
                                        for p in segm):
            raise UserError(f"{path}: annotation {ann['id']} has a polygon that is not a list "
                            "of at least three x, y pairs.")
        return
    if not isinstance(segm, dict) or "counts" not in segm:
        raise UserError(f"{path}: annotation {ann['id']} has a segmentation that is neither "
                        "polygons nor RLE.")
    if list(segm.get("size", ())) != [img["height"], img["width"]]:
        raise UserError(f"{path}: annotation {ann['id']} has an RLE mask of size "
                        f"{segm.get('size')} but its image {img['file_name']} is "
                        f"[{img['height']}, {img['width']}] (height, width).")


def _check_annotations(data, path):
    _unique_ids(data["annotations"], "annotation", path)
    images = {img["id"]: img for img in data["images"]}
    cat_ids = {c["id"] for c in data["categories"]}
    for ann in data["annotations"]:
        img = images.get(ann.get("image_id"))
        if img is None:
            raise UserError(f"{path}: annotation {ann['id']} points at image "
                            f"{ann.get('image_id')}, which is not in its images list.")
        if ann.get("category_id") not in cat_ids:
            raise UserError(f"{path}: annotation {ann['id']} has category "
                            f"{ann.get('category_id')}, which is not among its categories "
                            f"{sorted(cat_ids)[:10]}.")
        if ann.get("iscrowd") not in (0, 1) or not _is_number(ann.get("area")) \
                or ann["area"] < 0:
            raise UserError(f"{path}: annotation {ann['id']} needs iscrowd 0 or 1 and a "
                            "non-negative area (COCOeval reads both).")
        _check_box(ann, img, path)
        _check_segmentation(ann, img, path)


def _check_files(images, image_dir, path):
    if not os.path.isdir(image_dir):
        raise UserError(f"{image_dir} is not a folder; give the image folder of {path}.")
    present = set(os.listdir(image_dir))
    missing = [img for img in images if img["file_name"] not in present
               and not os.path.isfile(os.path.join(image_dir, img["file_name"]))]
    if missing:
        raise UserError(f"{os.path.join(image_dir, missing[0]['file_name'])} (image "
                        f"{missing[0]['id']} of {path}) is missing ({len(missing)} images "
                        "are); give the image folder these annotations belong to.")


class CocoSamples:
    """The images of a COCO annotation file, in image-id order, with their annotations.

    Parameters
    ----------
    annotations : str
        The COCO JSON file (``instances_*.json``).
    images : str
        The folder its ``file_name`` entries are relative to.

    Attributes
    ----------
    coco : pycocotools.coco.COCO
        The index of the checked file (for ``COCOeval`` and ``annToMask``).
    classes : list of str
        Category names in category-id order; label ``i`` is ``cat_ids[i]``.
    empty_image_ids : list of int
        Images without any annotation (kept).

    Raises
    ------
    UserError
        Any of the problems listed in the module doc, naming the file and the record.
    """

    def __init__(self, annotations, images):
        data = _load(annotations)
        missing = [k for k in ("images", "annotations", "categories")
                   if not isinstance(data, dict) or not isinstance(data.get(k), list)]
        if missing:
            raise UserError(f"{annotations} has no {missing[0]!r} list; give a COCO annotation "
                            "file (instances_*.json), not results or image info.")
        _check_images(data["images"], annotations)
        _check_categories(data["categories"], annotations)
        _check_annotations(data, annotations)
        _check_files(data["images"], images, annotations)
        from pycocotools.coco import COCO
        self.coco = COCO()
        self.coco.dataset = data
        with contextlib.redirect_stdout(io.StringIO()):     # "creating index..." lines
            self.coco.createIndex()
        self.annotation_file, self.image_dir = annotations, images
        self.image_ids = sorted(self.coco.getImgIds())
        self.cat_ids = sorted(self.coco.getCatIds())
        self.classes = [self.coco.cats[c]["name"] for c in self.cat_ids]
        self.label_of = {cat: i for i, cat in enumerate(self.cat_ids)}
        self.empty_image_ids = [i for i in self.image_ids if not self.coco.imgToAnns.get(i)]

    def __len__(self):
        return len(self.image_ids)

    def path(self, index):
        """The file of image ``index``."""
        return os.path.join(self.image_dir, self.coco.imgs[self.image_ids[index]]["file_name"])

    def annotations(self, index):
        """The annotation records of image ``index``, in file order."""
        return self.coco.imgToAnns.get(self.image_ids[index], [])

    def target(self, index):
        """The :class:`CocoTarget` of image ``index`` (empty arrays when it has none)."""
        anns = self.annotations(index)
        return CocoTarget(
            boxes=np.array([a["bbox"] for a in anns], np.float32).reshape(-1, 4),
            labels=np.array([self.label_of[a["category_id"]] for a in anns], np.int32),
            iscrowd=np.array([a["iscrowd"] for a in anns], bool),
            ann_ids=np.array([a["id"] for a in anns], np.int64))

    def read(self, index):
        """Image ``index`` as ``(RGB uint8 (H, W, 3), CocoTarget)``.

        Raises
        ------
        UserError
            The file is unreadable or not of the size its record gives.
        """
        path, record = self.path(index), self.coco.imgs[self.image_ids[index]]
        try:
            with open(path, "rb") as fimg:
                bgr = decode_image(fimg.read())
        except (OSError, BadImage) as err:
            raise UserError(f"cannot read image {path}: {err}.") from None
        if bgr.shape[:2] != (record["height"], record["width"]):
            raise UserError(f"image {path} is {bgr.shape[1]}x{bgr.shape[0]} but "
                            f"{self.annotation_file} says {record['width']}x{record['height']}; "
                            "give the images these annotations were made on.")
        return np.ascontiguousarray(bgr[:, :, ::-1]), self.target(index)

    __getitem__ = read

    def masks(self, index):
        """The instance masks of image ``index`` by pycocotools' ``annToMask``: uint8 (N, H, W).

        Raises
        ------
        UserError
            An annotation of the image has no segmentation.
        """
        record = self.coco.imgs[self.image_ids[index]]
        anns = self.annotations(index)
        for ann in anns:
            if ann.get("segmentation") is None:
                raise UserError(f"{self.annotation_file}: annotation {ann['id']} has no "
                                "segmentation; instance masks need one for every annotation.")
        masks = [self.coco.annToMask(ann) for ann in anns]
        return np.stack(masks) if masks else np.zeros((0, record["height"], record["width"]),
                                                      np.uint8)

    def report(self):
        """One line for the log: the counts, including what is kept but worth knowing."""
        anns = self.coco.dataset["annotations"]
        crowd = sum(a["iscrowd"] for a in anns)
        flat = sum(a["bbox"][2] == 0 or a["bbox"][3] == 0 for a in anns)
        return (f"{self.annotation_file}: {len(self)} images, {len(anns)} annotations in "
                f"{len(self.cat_ids)} categories; images without annotations: "
                f"{len(self.empty_image_ids)} (kept: every detection on them counts as a false "
                f"positive); crowd regions: {crowd}; boxes of zero width or height: {flat}")
