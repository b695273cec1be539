"""Which of our models a set of arrays belongs to: every name and shape must match.

The arrays show the block counts, stem and stage widths, radix, cardinality and bottleneck
width (:func:`.names.describe`); the registered classifiers with those settings are built
(without weights) and compared name by name. One thing never shows in the arrays: where the
avd pool sits (``avd_first``, the "fast" variants), so ``resnest50_fast_2s1x64d`` holds exactly
the arrays of ``resnest50``; the first registered name wins unless the model is given.
"""
import functools

from ..models import get_model, list_models, model_task
from ..models import resnest as zoo
from ..utils.errors import UserError
from .names import describe, mismatch

__all__ = ["identify", "model_config", "in_model_order"]

_SETTINGS = ("layers", "stem_width", "channels", "radix", "cardinality", "bottleneck_width")


def model_config(model):
    """The :class:`~resnest.gluon.models.ResNetConfig` of a registered classifier."""
    if model_task(model) != "classification" or not hasattr(getattr(zoo, model, None), "config"):
        raise UserError(f"{model!r} is not a ResNeSt classifier; name one of "
                        "resnest14 ... resnest269, resnest50_fast_*.")
    return getattr(zoo, model).config


@functools.lru_cache(maxsize=8)
def _expected(model, classes):
    """Our ``model``'s parameter shapes (built without weights; kept for the next file)."""
    net = get_model(model, classes=classes or 1)
    return dict((k, tuple(p.shape)) for k, p in net._collect_params_with_prefix().items()
                if classes or not k.startswith("fc."))


def _differences(expected, arrays):
    return mismatch(expected, arrays)[0]


def identify(arrays, source, model=None):
    """The registered model whose parameters are exactly ``arrays`` (our names; without the
    classifier ``fc.*`` for a backbone's file). Returns ``(model, same)`` where ``same`` lists
    the other models with the very same arrays.

    Raises
    ------
    UserError
        ``model`` is given and the arrays do not fit it, or no model fits; one sentence.
    """
    arch = describe(arrays)
    if model is not None:
        problems = _differences(_expected(model, arch["classes"]), arrays)
        if problems:
            raise UserError(f"{source} does not hold {model} weights: {', '.join(problems)}.")
        model_config(model)
        return model, []
    fits = []
    for name in list_models(task="classification"):
        try:
            cfg = model_config(name)
        except UserError:
            continue
        if all(getattr(cfg, k) == arch[k] for k in _SETTINGS) and \
                not _differences(_expected(name, arch["classes"]), arrays):
            fits.append(name)
    if not fits:
        shown = ", ".join(f"{k.replace('_', ' ')} {arch[k]}" for k in _SETTINGS)
        raise UserError(f"{source} matches none of our ResNeSt models ({shown}); it is another "
                        "architecture.")
    return fits[0], fits[1:]


def in_model_order(arrays, model):
    """``arrays`` ordered as ``model`` defines its parameters (PyTorch's state_dict order too:
    both follow the order in which the layers are defined)."""
    order = _expected(model, describe(arrays)["classes"])
    return {k: arrays[k] for k in order if k in arrays}
