"""The one registry (:mod:`resnest.gluon.models.registry`): a constructor registered under its
function name with its task, found by name (case-insensitive) and by shell pattern, a second
registration of a name and an unknown task refused, an unknown name one sentence listing the
known ones."""
import pytest

from _errors import one_sentence
from resnest.gluon import UserError, get_model, list_models
from resnest.gluon.models import registry
from resnest.gluon.pretrained import PRETRAINED


@pytest.fixture
def scratch(monkeypatch):
    """The registry's tables, restored after the test."""
    monkeypatch.setattr(registry, "_MODELS", dict(registry._MODELS))
    monkeypatch.setattr(registry, "_TASK", dict(registry._TASK))


def test_a_registered_constructor_is_found_by_name_pattern_and_task(scratch):
    @registry.register_model(task="segmentation")
    def zz_probe_seg(**kwargs):
        return ("seg", kwargs)

    @registry.register_model
    def zz_probe_cls(**kwargs):
        return ("cls", kwargs)
    assert get_model("ZZ_Probe_Seg", classes=3) == ("seg", {"classes": 3})
    assert list_models("zz_probe_*") == ["zz_probe_cls", "zz_probe_seg"]
    assert list_models("zz_probe_*", task="segmentation") == ["zz_probe_seg"]
    assert registry.model_task("zz_probe_cls") == "classification"
    assert list_models("zz_probe_*", pretrained=True) == []          # not in the table


def test_pretrained_lists_exactly_the_models_of_the_table():
    assert list_models(pretrained=True) == sorted(n for n in PRETRAINED if n in list_models())
    assert set(list_models(pretrained=True)) <= set(PRETRAINED)


def test_a_second_registration_and_an_unknown_task_are_refused(scratch):
    def resnest50():
        return None
    with pytest.raises(ValueError, match="'resnest50' is registered twice"):
        registry.register_model(resnest50)
    with pytest.raises(ValueError, match="task must be one of"):
        registry.register_model(task="captioning")


def test_an_unknown_name_is_one_sentence_listing_the_known_ones():
    with pytest.raises(UserError, match="unknown model 'resnet9000'.*resnest50") as err:
        get_model("resnet9000")
    one_sentence(err, "resnest_tiny", "resnest269")
    with pytest.raises(UserError, match="unknown model 'nope'"):
        registry.model_task("nope")
