"""Write ``resnest/gluon/imagenet_classes.tsv`` from GluonCV's ILSVRC2012 class table.

    python tools/make_imagenet_classes.py

Line ``i`` is ``<WordNet id>\\t<short name>`` of class ``i`` (the sorted WordNet ids, the label
order of the published weights). ``tests/test_predict.py`` checks the file against GluonCV.
"""
import os
import sys

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "resnest",
                   "gluon", "imagenet_classes.tsv")


def main():
    from gluoncv.data.imagenet.classification import ImageNet1kAttr
    attr = ImageNet1kAttr()
    if attr.synset != sorted(attr.synset) or len(attr.synset) != 1000:
        sys.exit("GluonCV's table is not the 1000 sorted WordNet ids")
    with open(OUT, "w", encoding="utf-8", newline="\n") as f:
        for wnid, name in zip(attr.synset, attr.classes):
            f.write(f"{wnid}\t{name}\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
