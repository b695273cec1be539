"""What ``detect.py`` writes: text for people, JSON and CSV rows, and pictures of each image
with its boxes, class names and scores drawn (and Mask R-CNN's masks tinted in).

>>> run_detect(cfg, json_path="boxes.json", draw_dir="pictures")
"""
import csv
import io
import json
import os
import sys

import numpy as np

from ..utils.errors import UserError
from ..utils.io import atomic_write, write_text
from ..utils.outputs import refuse_existing
from .detect import detect

__all__ = ["format_text", "CSV_HEADER", "csv_rows", "draw_detections", "run_detect"]

CSV_HEADER = ["image", "error", "height", "width", "index", "name", "score", "x1", "y1", "x2",
              "y2"]
# Distinct colours for the classes (class i takes _COLOURS[i % len]).
_COLOURS = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def format_text(row):
    """A few lines for people: the image, then one line per detection."""
    lines = [f"{row.image}  ({len(row.objects)} object{'s' if len(row.objects) != 1 else ''})"]
    for _, name, score, box in row.objects:
        corners = ", ".join(f"{v:.1f}" for v in box)
        lines.append(f"  {100 * score:6.2f}%  {name}  [{corners}]")
    return "\n".join(lines)


def csv_rows(row):
    """The CSV rows of one image: one per detection, or one with blank detection cells."""
    head = [row.image, row.error or "", row.height or "", row.width or ""]
    if not row.objects:
        return [head + [""] * 7]
    return [head + [index, name, f"{score:.6f}", *(f"{v:.2f}" for v in box)]
            for index, name, score, box in row.objects]


def draw_detections(rgb, row):
    """A PIL image of ``rgb`` with ``row``'s masks tinted (half the class colour), boxes
    outlined and labelled ``name score``."""
    from PIL import Image, ImageDraw
    canvas = np.array(rgb, np.float32)
    if row.masks is not None:
        for k, (index, _, _, _) in enumerate(row.objects):
            inside = row.masks[k].astype(bool)
            canvas[inside] = 0.5 * canvas[inside] + 0.5 * np.array(_COLOURS[index % 10])
    picture = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8))
    pen = ImageDraw.Draw(picture)
    for index, name, score, (x1, y1, x2, y2) in row.objects:
        colour = _COLOURS[index % len(_COLOURS)]
        pen.rectangle([x1, y1, x2, y2], outline=colour, width=2)
        label = f"{name} {score:.2f}"
        left, top, right, bottom = pen.textbbox((x1, y1), label)
        lift = max(0.0, y1 - (bottom - top) - 2)
        pen.rectangle([x1, lift, x1 + right - left + 2, lift + bottom - top + 2], fill=colour)
        pen.text((x1 + 1, lift), label, fill=(0, 0, 0))
    return picture


def _write_picture(picture, path):
    atomic_write(path, lambda tmp: picture.save(tmp, format="JPEG", quality=90))


def _json_text(rows):
    body = ",\n".join(json.dumps(r.as_dict(), ensure_ascii=False) for r in rows)
    return f"[\n{body}\n]\n" if body else "[]\n"


def _csv_text(rows):
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for row in rows:
        writer.writerows(csv_rows(row))
    return table.getvalue()


def run_detect(cfg, json_path=None, csv_path=None, draw_dir=None, force=False, out=None,
               err=None):
    """Run :func:`~.detect.detect` and report: text to ``out`` (unless a machine format goes
    there), one line on ``err`` per image that could not be read, the rows to ``json_path``
    and/or ``csv_path`` (``'-'``: ``out``), a picture per image in ``draw_dir``. Returns
    ``(detected, failed)`` image counts."""
    out, err = out or sys.stdout, err or sys.stderr
    if json_path == "-" and csv_path == "-":
        raise UserError("--json - and --csv - cannot both go to stdout; write one to a file.")
    if draw_dir:
        if os.path.exists(draw_dir) and not os.path.isdir(draw_dir):
            raise UserError(f"--draw {draw_dir} is a file; give a folder for the pictures.")
        os.makedirs(draw_dir, exist_ok=True)
    machine_out = "-" in (json_path, csv_path)
    rows = []
    for row, rgb in detect(cfg, log=lambda m: print(m, file=err, flush=True),
                           keep_images=bool(draw_dir)):
        if row.error:
            print(f"cannot detect in {row.image}: {row.error}", file=err, flush=True)
        else:
            if not machine_out:
                print(format_text(row), file=out, flush=True)
            if draw_dir:
                path = os.path.join(draw_dir, row.picture)
                refuse_existing([path], force, what="picture")
                _write_picture(draw_detections(rgb, row), path)
        if row.masks is not None:                       # the pixel counts stay, not the masks
            row.mask_pixels, row.masks = [int(m.sum()) for m in row.masks], None
        rows.append(row)
    failed = sum(r.error is not None for r in rows)
    for path, text in ((json_path, _json_text), (csv_path, _csv_text)):
        if path == "-":
            out.write(text(rows))
        elif path:
            write_text(path, text(rows))
    if failed:
        print(f"{len(rows) - failed} of {len(rows)} images searched; {failed} could not be "
              "read (listed above).", file=err)
    return len(rows) - failed, failed
