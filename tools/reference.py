"""Other implementations of ResNeSt, loaded side by side with ours for checks and benchmarks.

- The authors' published Gluon code (``resnest==0.0.5`` on the package index). Its package is
  also called ``resnest``, so it is imported under another name. ``make setup``
  unpacks the wheel into ``.venv/reference``; point ``RESNEST_AUTHORS_DIR`` elsewhere if needed.
- GluonCV's copy (``gluoncv.model_zoo``), the only published Gluon ``resnest14``/``resnest26``.
"""
import importlib
import importlib.util
import os
import sys

from resnest.gluon.utils.errors import UserError

__all__ = ["authors_dir", "authors_package", "authors_module", "authors_model", "gluoncv_model",
           "copy_weights"]

_ALIAS = "resnest_authors"


def authors_dir():
    """Folder holding the unpacked authors' wheel (it contains ``resnest/gluon``)."""
    here = os.path.dirname(os.path.abspath(__file__))
    default = os.path.join(here, "..", ".venv", "reference")
    return os.path.abspath(os.environ.get("RESNEST_AUTHORS_DIR", default))


def authors_package():
    """The authors' ``resnest.gluon`` package, imported as ``resnest_authors.gluon`` (their
    whole top package is aliased, so their relative imports such as ``..utils`` work)."""
    gluon = f"{_ALIAS}.gluon"
    if gluon in sys.modules:
        return sys.modules[gluon]
    folder = os.path.join(authors_dir(), "resnest")
    if not os.path.isfile(os.path.join(folder, "gluon", "__init__.py")):
        raise UserError(f"the authors' resnest 0.0.5 is not unpacked in {authors_dir()}; "
                        f"run `make setup` (or set RESNEST_AUTHORS_DIR).")
    spec = importlib.util.spec_from_file_location(
        _ALIAS, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder])
    module = importlib.util.module_from_spec(spec)
    sys.modules[_ALIAS] = module
    spec.loader.exec_module(module)
    return importlib.import_module(gluon)


def authors_module(name):
    """A module of the authors' Gluon package, e.g. ``'model_store'`` or ``'dropblock'``."""
    authors_package()
    return importlib.import_module(f"{_ALIAS}.gluon.{name}")


def authors_model(name, **kwargs):
    """The authors' Gluon model ``name`` (not initialised)."""
    package = authors_package()
    if not hasattr(package, name):
        raise UserError(f"the authors' Gluon release has no model {name!r}.")
    return getattr(package, name)(**kwargs)


def gluoncv_model(name, **kwargs):
    """GluonCV's model ``name`` (not initialised)."""
    from gluoncv.model_zoo import get_model
    return get_model(name, **kwargs)


def copy_weights(src, dst):
    """Copy every parameter of ``src`` into ``dst`` by structural name (both initialised)."""
    theirs = src._collect_params_with_prefix()
    ours = dst._collect_params_with_prefix()
    if sorted(theirs) != sorted(ours):
        raise ValueError("the two models have different parameter names")
    for key, param in ours.items():
        param.set_data(theirs[key].data())
