"""The published class lists equal GluonCV's own tables, and the one class-list check."""
import pytest

from resnest.gluon.classes import check_class_names, published_classes
from resnest.gluon.pretrained import PRETRAINED
from resnest.gluon.utils.errors import UserError


def test_imagenet_list_is_gluoncvs_table():
    from gluoncv.data.imagenet.classification import ImageNet1kAttr
    attr = ImageNet1kAttr()
    wnids, names = published_classes("imagenet")
    assert len(wnids) == 1000 and wnids == sorted(wnids)
    assert (wnids, names) == (list(attr.synset), list(attr.classes))


def test_ade20k_and_coco_lists_are_gluoncvs_tables():
    from gluoncv.data.ade20k.segmentation import ADE20KSegmentation
    from gluoncv.data.mscoco.detection import COCODetection
    ade, coco = published_classes("ade20k"), published_classes("coco")
    assert ade.names == list(ADE20KSegmentation.CLASSES) and len(ade.names) == 150
    assert coco.names == list(COCODetection.CLASSES) and len(coco.names) == 80
    assert ade.descriptions is None and coco.descriptions is None


def test_every_published_model_names_a_list_of_its_class_count():
    for name, info in PRETRAINED.items():
        assert len(published_classes(info.class_list).names) == info.classes, name


def test_a_shifted_or_shorter_class_list_is_refused_in_one_sentence():
    check_class_names(["a", "b"], ["a", "b"], "w.params", "data")
    check_class_names(None, ["a"], "w.params", "data")
    with pytest.raises(UserError, match="class 1 is 'c' in the data but 'b' in the weights"):
        check_class_names(["a", "b"], ["a", "c"], "w.params", "data")
    with pytest.raises(UserError, match="1 classes in the data, 2 in the weights"):
        check_class_names(["a", "b"], ["a"], "w.params", "data")
    with pytest.raises(UserError, match="no published class list 'voc'"):
        published_classes("voc")
