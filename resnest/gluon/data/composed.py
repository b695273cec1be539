"""The composed real-pixel data set for segmentation and detection (no ADE20K or COCO needed).

How it is made, image by image (``size`` x ``size``, default 256):

1. Background: a real photo, a random square crop of 50-100 % of its shorter side, flipped
   left-right with probability 1/2, resized to ``size`` x ``size`` (OpenCV ``INTER_AREA``).
   The photos of the two splits are disjoint (:data:`PHOTOS`): training uses scikit-image's
   astronaut, coffee, rocket, hubble_deep_field, camera, brick, grass and scikit-learn's
   china.jpg; validation uses scikit-image's chelsea, gravel, the left view of
   stereo_motorcycle and scikit-learn's flower.jpg (grey photos are repeated over R, G, B).
2. Objects: ``objects`` (default 2 to 6) of scikit-learn's real handwritten digits
   (``load_digits``, 8x8 scans on 0..16), each upscaled FIRST (``ink = cv2.resize(float32(scan
   / 16), (w, h), INTER_LINEAR)``, height ``object_size`` (default 40-120 px), width = height x
   0.75..1.33), THEN thresholded: the object is exactly the pixels with ``ink > 0.5``, and
   only those pixels are pasted, at a random position wholly inside the image, coloured
   ``round(rgb * (0.6 + 0.4 * ink))`` with one random colour per object (HSV: any hue,
   saturation 0.5-1, value 0.6-1). The digit scans of the splits are disjoint too (the
   stratified split of :func:`~resnest.gluon.data.digits.split_indices`, 20 % to validation,
   seeded by ``seed``).
3. Occlusion: objects are pasted in order, a later one overwrites earlier pixels. An object
   left with less than ``min_visible`` (default half) of its own pixels visible is dropped
   and the image is painted again without it (which only uncovers the others), so every
   mask is exactly the visible pasted pixels.

Written (``root`` below), from the same images for both tasks:

- ``images/{training,validation}/composed_{train,val}_NNNNNN.jpg`` (JPEG quality 95, the
  COCO ``file_name``) and
  ``annotations/{training,validation}/*.png``: class-index PNGs in the ADE20K layout, 0 =
  unlabelled (never written here, but ignored as in ADE20K, e.g. padding), 1 = background,
  ``2 + d`` = digit ``d``; ``classes.txt`` names the classes of the model's outputs, line ``i``
  for PNG value ``i + 1`` (as ADE20K's value 1 is its class 0, "wall").
- ``annotations/instances_{train,val}.json``: COCO format, categories 1..10 = digits 0..9,
  one annotation per kept object: ``segmentation`` = COCO RLE of its visible mask from
  pycocotools' ``mask.encode``, ``bbox`` = the tight ``[x, y, w, h]`` of that mask, ``area`` =
  its pixel count, ``iscrowd`` 0.
- ``composition.json``: how every image was made (photo, crop, flip, each paste and whether
  it was kept), enough to rebuild every pixel from the packaged sources.

Deterministic from ``seed`` (one ``RandomState`` per image, from the seed, split and index);
written into ``<root>.partial`` (removed again if writing fails) and renamed when complete; a
complete folder made with the same settings is left alone.
"""
import colorsys
import json
import os
import shutil

import cv2
import numpy as np

from ..utils.errors import UserError
from ..utils.io import generated_folder_done, publish_folder, staging_folder
from ..utils.seed import derive_seed
from .digits import split_indices

__all__ = ["PHOTOS", "SPLITS", "CLASS_NAMES", "write_composed", "coco_paths", "load_photo",
           "digit_ink", "compose"]

# split -> (tag in file names, ADE20K folder name)
SPLITS = {"train": ("train", "training"), "val": ("val", "validation")}
_SPLIT_SEED = {"train": 0, "val": 1}
PHOTOS = {
    "train": ("skimage:astronaut", "skimage:coffee", "skimage:rocket",
              "skimage:hubble_deep_field", "skimage:camera", "skimage:brick", "skimage:grass",
              "sklearn:china.jpg"),
    "val": ("skimage:chelsea", "skimage:gravel", "skimage:stereo_motorcycle",
            "sklearn:flower.jpg"),
}
DIGIT_NAMES = tuple(f"digit {d}" for d in range(10))
CLASS_NAMES = ("background",) + DIGIT_NAMES
INK_THRESHOLD = 0.5
_VERSION = 1


def load_photo(name):
    """A packaged photo as RGB uint8 (H, W, 3): ``skimage:<function>`` (``skimage.data``; of
    ``stereo_motorcycle`` the left view) or ``sklearn:<file>`` (``load_sample_images``)."""
    source, key = name.split(":", 1)
    if source == "sklearn":
        from sklearn.datasets import load_sample_images
        photos = load_sample_images()
        img = photos.images[[os.path.basename(f) for f in photos.filenames].index(key)]
    else:
        import skimage.data
        img = getattr(skimage.data, key)()
        img = img[0] if isinstance(img, tuple) else img
    img = np.asarray(img, np.uint8)
    return np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img[:, :, :3]


def digit_ink(scan, height, width):
    """A digit scan (64 values on 0..16) upscaled to ``height`` x ``width`` as ink on 0..1
    (float32, bilinear); the object is ``ink > INK_THRESHOLD``."""
    ink = np.asarray(scan, np.float32).reshape(8, 8) / np.float32(16.0)
    return cv2.resize(ink, (width, height), interpolation=cv2.INTER_LINEAR)


def _draw_colour(rng):
    red, green, blue = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.5, 1.0),
                                           rng.uniform(0.6, 1.0))
    return [int(round(255 * red)), int(round(255 * green)), int(round(255 * blue))]


def _plan(rng, photo_shapes, pool, settings):
    """The random draws of one image: background crop and the pastes, in paste order."""
    size = settings["size"]
    photo = int(rng.randint(len(photo_shapes)))
    height, width = photo_shapes[photo]
    side = int(round(min(height, width) * rng.uniform(0.5, 1.0)))
    crop = [int(rng.randint(height - side + 1)), int(rng.randint(width - side + 1)), side]
    flip = bool(rng.uniform() < 0.5)
    pastes = []
    low, high = settings["objects"]
    for _ in range(rng.randint(low, high + 1)):
        obj_h = int(rng.randint(settings["object_size"][0], settings["object_size"][1] + 1))
        obj_w = min(size, int(round(obj_h * rng.uniform(0.75, 1.33))))
        pastes.append({"digit_index": int(pool[rng.randint(len(pool))]),
                       "top": int(rng.randint(size - obj_h + 1)),
                       "left": int(rng.randint(size - obj_w + 1)),
                       "height": obj_h, "width": obj_w, "colour": _draw_colour(rng)})
    return {"photo": photo, "crop": crop, "flip": flip, "pastes": pastes}


def _background(photo, crop, flip, size):
    top, left, side = crop
    img = photo[top:top + side, left:left + side]
    img = img[:, ::-1] if flip else img
    return cv2.resize(np.ascontiguousarray(img), (size, size), interpolation=cv2.INTER_AREA)


def _paint(image, owner, pastes, scans, keep):
    """Paste the kept objects in order into ``image``; ``owner`` records, per pixel, the index
    of the paste on top (-1: background)."""
    for k, paste in enumerate(pastes):
        if not keep[k]:
            continue
        ink = digit_ink(scans[paste["digit_index"]], paste["height"], paste["width"])
        obj = ink > INK_THRESHOLD
        rows = slice(paste["top"], paste["top"] + paste["height"])
        cols = slice(paste["left"], paste["left"] + paste["width"])
        shade = np.asarray(paste["colour"], np.float32) * (0.6 + 0.4 * ink[:, :, None])
        image[rows, cols][obj] = np.round(shade[obj]).astype(np.uint8)
        owner[rows, cols][obj] = k


def compose(plan, photos, scans, labels, size, min_visible):
    """Render one planned image.

    Returns
    -------
    image : uint8 (size, size, 3) RGB
    label_map : uint8 (size, size), 1 = background, ``2 + digit`` for the objects
    instances : list of (paste index, visible bool mask)
        The kept objects in paste order; ``plan['pastes'][k]['kept']`` is set for every paste.
    """
    background = _background(photos[plan["photo"]], plan["crop"], plan["flip"], size)
    pastes = plan["pastes"]
    owner = np.full((size, size), -1, np.int32)
    _paint(background.copy(), owner, pastes, scans, [True] * len(pastes))
    full = [int(np.count_nonzero(digit_ink(scans[p["digit_index"]], p["height"], p["width"])
                                 > INK_THRESHOLD)) for p in pastes]
    keep = [np.count_nonzero(owner == k) >= min_visible * full[k] and full[k] > 0
            for k in range(len(pastes))]
    image = background.copy()
    owner[:] = -1
    _paint(image, owner, pastes, scans, keep)
    label_map = np.ones((size, size), np.uint8)
    instances = []
    for k, paste in enumerate(pastes):
        paste["kept"] = bool(keep[k])
        if keep[k]:
            visible = owner == k
            label_map[visible] = 2 + int(labels[paste["digit_index"]])
            instances.append((k, visible))
    return image, label_map, instances


def _coco_annotation(mask, ann_id, image_id, category_id):
    from pycocotools import mask as mask_util
    rle = mask_util.encode(np.asfortranarray(mask.astype(np.uint8)))
    ys, xs = np.nonzero(mask)
    x0, y0 = int(xs.min()), int(ys.min())
    return {"id": ann_id, "image_id": image_id, "category_id": category_id, "iscrowd": 0,
            "bbox": [x0, y0, int(xs.max()) - x0 + 1, int(ys.max()) - y0 + 1],
            "area": int(mask_util.area(rle)),
            "segmentation": {"size": list(rle["size"]), "counts": rle["counts"].decode("ascii")}}


def coco_paths(root, split):
    """``(annotation file, image folder)`` of a composed set's ``split`` ('train' or 'val')."""
    tag, folder = SPLITS[split]
    return (os.path.join(root, "annotations", f"instances_{tag}.json"),
            os.path.join(root, "images", folder))


def _write_split(staging, split, count, settings, sources):
    """Write one split's images, PNGs and COCO JSON; return its composition records."""
    tag, folder = SPLITS[split]
    photos, scans, labels, pool = sources
    shapes = [p.shape[:2] for p in photos]
    for kind in ("images", "annotations"):
        os.makedirs(os.path.join(staging, kind, folder))
    images, annotations, records = [], [], []
    for index in range(count):
        rng = np.random.RandomState(derive_seed(settings["seed"], _SPLIT_SEED[split], index))
        plan = _plan(rng, shapes, pool, settings)
        image, label_map, instances = compose(plan, photos, scans, labels, settings["size"],
                                              settings["min_visible"])
        stem = f"composed_{tag}_{index + 1:06d}"
        cv2.imwrite(os.path.join(staging, "images", folder, stem + ".jpg"), image[:, :, ::-1],
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
        cv2.imwrite(os.path.join(staging, "annotations", folder, stem + ".png"), label_map)
        images.append({"id": index + 1, "file_name": stem + ".jpg",
                       "height": settings["size"], "width": settings["size"]})
        for k, visible in instances:
            paste = plan["pastes"][k]
            paste["annotation_id"] = len(annotations) + 1
            annotations.append(_coco_annotation(visible, len(annotations) + 1, index + 1,
                                                1 + int(labels[paste["digit_index"]])))
        plan["photo"] = PHOTOS[split][plan["photo"]]
        plan["file_name"] = stem + ".jpg"
        records.append(plan)
    categories = [{"id": d + 1, "name": name, "supercategory": "digit"}
                  for d, name in enumerate(DIGIT_NAMES)]
    coco = {"info": {"description": f"composed digits on photos, {split}", "version": "1"},
            "licenses": [], "images": images, "annotations": annotations,
            "categories": categories}
    with open(os.path.join(staging, "annotations", f"instances_{tag}.json"), "w",
              encoding="utf-8") as fjson:
        json.dump(coco, fjson, sort_keys=True)
    dropped = sum(not p["kept"] for r in records for p in r["pastes"])
    return records, {"images": count, "annotations": len(annotations), "dropped": dropped}


def _check_settings(size, train_images, val_images, objects, object_size, min_visible):
    if size < 32:
        raise UserError(f"size must be at least 32 pixels, got {size}.")
    if train_images < 1 or val_images < 1:
        raise UserError("train-images and val-images must be at least 1.")
    if not 1 <= objects[0] <= objects[1]:
        raise UserError(f"objects must be a range 1 <= low <= high, got {objects}.")
    if not 8 <= object_size[0] <= object_size[1] <= size:
        raise UserError(f"object-size must be a range 8 <= low <= high <= size ({size}), "
                        f"got {object_size}.")
    if not 0 < min_visible <= 1:
        raise UserError(f"min-visible must be in (0, 1], got {min_visible}.")


def write_composed(out_dir, size=256, train_images=300, val_images=100, seed=0,
                   objects=(2, 6), object_size=(40, 120), min_visible=0.5):
    """Write the composed data set (see the module doc) to ``out_dir``; idempotent.

    Returns
    -------
    dict or None
        Per split ``{'images', 'annotations', 'dropped'}`` when written; None when ``out_dir``
        already holds a complete set made with the same settings.

    Raises
    ------
    UserError
        Bad settings, pycocotools missing, or ``out_dir`` holds something else.
    """
    objects, object_size = [int(v) for v in objects], [int(v) for v in object_size]
    _check_settings(size, train_images, val_images, objects, object_size, min_visible)
    settings = {"size": int(size), "train_images": int(train_images),
                "val_images": int(val_images), "seed": int(seed), "objects": objects,
                "object_size": object_size, "min_visible": float(min_visible),
                "version": _VERSION}
    if generated_folder_done(out_dir, settings, "composed data"):
        return None
    try:
        import pycocotools.mask  # noqa: F401  (the RLE encoder)
    except ImportError:
        raise UserError("the composed data set needs pycocotools for its COCO masks; "
                        "pip install pycocotools.") from None
    from sklearn.datasets import load_digits
    digits = load_digits()
    pools = dict(zip(("train", "val"), split_indices(digits.target, 0.2, seed)))
    staging = staging_folder(out_dir)
    try:
        counts, composition = {}, {}
        for split, count in (("train", train_images), ("val", val_images)):
            photos = [load_photo(name) for name in PHOTOS[split]]
            sources = (photos, digits.data, digits.target, pools[split])
            composition[split], counts[split] = _write_split(staging, split, count, settings,
                                                             sources)
        with open(os.path.join(staging, "classes.txt"), "w", encoding="utf-8") as fcls:
            fcls.write("".join(name + "\n" for name in CLASS_NAMES))
        with open(os.path.join(staging, "composition.json"), "w", encoding="utf-8") as fcomp:
            json.dump({"settings": settings, "splits": composition}, fcomp, sort_keys=True)
        publish_folder(staging, out_dir, {"settings": settings, "counts": counts})
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return counts
