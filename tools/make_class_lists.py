"""Write the published class lists in ``resnest/gluon/classes/`` from GluonCV's own tables.

    python tools/make_class_lists.py

``imagenet.tsv``: line ``i`` is ``<WordNet id>\\t<short name>`` of class ``i`` (the sorted
WordNet ids, the label order of the published classifiers). ``ade20k.tsv``: GluonCV's 150
ADE20K classes (``ADE20KSegmentation.CLASSES``; label ``i + 1`` of an ADE20K mask is class
``i``, 0 is "other", ignored). ``coco.tsv``: GluonCV's 80 COCO detection classes
(``COCODetection.CLASSES``, the order of the detectors' class ids). The tests check every file
against GluonCV.
"""
import os
import sys

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resnest",
                   "gluon", "classes")


def tables():
    """``{list name: [(name, description or None), ...]}`` from GluonCV."""
    from gluoncv.data.ade20k.segmentation import ADE20KSegmentation
    from gluoncv.data.imagenet.classification import ImageNet1kAttr
    from gluoncv.data.mscoco.detection import COCODetection
    attr = ImageNet1kAttr()
    if attr.synset != sorted(attr.synset) or len(attr.synset) != 1000:
        sys.exit("GluonCV's table is not the 1000 sorted WordNet ids")
    return {"imagenet": list(zip(attr.synset, attr.classes)),
            "ade20k": [(name, None) for name in ADE20KSegmentation.CLASSES],
            "coco": [(name, None) for name in COCODetection.CLASSES]}


def main():
    for list_name, rows in tables().items():
        path = os.path.join(OUT, list_name + ".tsv")
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            for name, description in rows:
                f.write(name + (f"\t{description}" if description is not None else "") + "\n")
        print(f"wrote {path} ({len(rows)} classes)")


if __name__ == "__main__":
    main()
