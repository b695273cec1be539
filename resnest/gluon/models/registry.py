"""The one registry of model constructors: ``register_model``, ``get_model``, ``list_models``.

It lives inside the models package, as torchvision's and timm's do: importing this module
first runs ``resnest.gluon.models/__init__``, which imports every model family (classifiers,
segmentation, detection), so every model is registered before any function here can run, and
this module needs to import none of them.
"""
import fnmatch

from ..pretrained import PRETRAINED
from ..utils.errors import UserError

__all__ = ["TASKS", "register_model", "get_model", "list_models", "model_task"]

# What a model does; list_models() shows it, the pretrained table and the scripts key on it.
TASKS = ("classification", "segmentation", "detection", "instance-segmentation")

_MODELS = {}        # name -> constructor
_TASK = {}          # name -> task


def register_model(fn=None, *, task="classification"):
    """Register a model constructor under its function name (raises on a duplicate name).

    Use as ``@register_model`` or ``@register_model(task="segmentation")``.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, not {task!r}")

    def add(fn):
        name = fn.__name__
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name], _TASK[name] = fn, task
        return fn
    return add(fn) if fn is not None else add


def list_models(pattern="*", pretrained=False, task=None):
    """Sorted names of the registered models matching a shell-style ``pattern``.

    With ``pretrained=True`` only models with published weights are listed; ``task`` keeps
    the models of one task (see :data:`TASKS` and :func:`model_task`).
    """
    names = sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern)
                   and (task is None or _TASK[n] == task))
    return [n for n in names if n in PRETRAINED] if pretrained else names


def _known(name):
    if name.lower() not in _MODELS:
        raise UserError(f"unknown model {name!r}; known models: {', '.join(sorted(_MODELS))}.")
    return name.lower()


def model_task(name):
    """The task of a registered model ('classification', 'segmentation', ...)."""
    return _TASK[_known(name)]


def get_model(name, **kwargs):
    """Build a registered model by name; ``kwargs`` go to its constructor.

    Raises
    ------
    UserError
        If ``name`` is not registered; the message lists the known names.
    """
    return _MODELS[_known(name)](**kwargs)
