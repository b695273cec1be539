"""The one registry of model constructors: ``register_model``, ``get_model``, ``list_models``."""
import fnmatch

from .utils.errors import UserError

__all__ = ["register_model", "get_model", "list_models"]

_MODELS = {}


def register_model(fn):
    """Register a model constructor under its function name (raises on a duplicate name)."""
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"model {name!r} is registered twice")
    _MODELS[name] = fn
    return fn


def list_models(pattern="*", pretrained=False):
    """Sorted names of the registered models matching a shell-style ``pattern``.

    With ``pretrained=True`` only models with published weights are listed.
    """
    from . import models  # noqa: F401  (registers every model)
    from .pretrained import PRETRAINED
    names = sorted(n for n in _MODELS if fnmatch.fnmatch(n, pattern))
    return [n for n in names if n in PRETRAINED] if pretrained else names


def get_model(name, **kwargs):
    """Build a registered model by name; ``kwargs`` go to its constructor.

    Raises
    ------
    UserError
        If ``name`` is not registered; the message lists the known names.
    """
    from . import models  # noqa: F401  (registers every model)
    try:
        fn = _MODELS[name.lower()]
    except KeyError:
        raise UserError(f"unknown model {name!r}; known models: {', '.join(sorted(_MODELS))}.") \
            from None
    return fn(**kwargs)
