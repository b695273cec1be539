"""Configurations as dataclasses that are their own command line: every default, vocabulary and
range is typed once, on the field.

>>> @dataclass
... class Cfg:
...     batch_size: int = option(32, "per device", check=POSITIVE)
...     backend: str = option("mxnet", "engine", choices=("mxnet", "openvino"))
>>> parser = build_parser(Cfg, "what it does")
>>> cfg = parse_config(Cfg, parser, ["--batch-size", "8"])

:func:`build_parser` turns the fields into ``argparse`` arguments (flag ``--batch-size`` from
``batch_size`` unless ``flags`` names others; a ``bool`` field defaulting to False is a switch,
one defaulting to True a ``--no-...`` switch), :func:`check_fields` enforces the declared
``choices`` and ``check`` of every field with one sentence naming the flag, whether the config
came from a command line or was built in code with keywords. A config's own ``check()`` adds
the rules between fields and calls :func:`check_fields` first.
"""
import argparse
import dataclasses
import math
import numbers
import typing

from .errors import UserError

__all__ = ["option", "Check", "POSITIVE", "NON_NEGATIVE", "FRACTION", "UNIT", "at_least",
           "flag_of", "check_fields", "build_parser", "parse_config"]


class Check(typing.NamedTuple):
    """A range rule for a number: ``test(value)`` and the words for the message."""

    test: typing.Callable
    words: str


POSITIVE = Check(lambda v: v > 0, "must be positive")
NON_NEGATIVE = Check(lambda v: v >= 0, "must be 0 or more")
FRACTION = Check(lambda v: 0 <= v < 1, "must be in [0, 1)")
UNIT = Check(lambda v: 0 < v <= 1, "must be in (0, 1]")


def at_least(low):
    """The rule ``value >= low``."""
    return Check(lambda v: v >= low, f"must be at least {low}")


def option(default, help="", *, flags=None, choices=None, check=None, metavar=None, nargs=None,
           group=None, cli=True, required=False, **extra):
    """A dataclass field with its command-line description; mutable defaults are copied.

    ``check`` (a :class:`Check`) and ``choices`` are enforced by :func:`check_fields` (None
    values, where the field allows None, are not checked). ``cli=False`` keeps a field off the
    command line (set by the script itself); ``required`` fields (default None) must be given.
    ``flags=("name",)`` without dashes makes a positional argument. ``extra`` keys are kept in
    the field's metadata for the config's own rules (e.g. ``operational=True``).
    """
    meta = dict(extra, help=help, flags=flags, choices=tuple(choices) if choices else None,
                check=check, metavar=metavar, nargs=nargs, group=group, cli=cli,
                required=required)
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _flags(field):
    return field.metadata.get("flags") or ("--" + field.name.replace("_", "-"),)


def flag_of(cls, name):
    """The command-line flag of field ``name`` of config class ``cls`` (for messages)."""
    field = {f.name: f for f in dataclasses.fields(cls)}[name]
    flags = _flags(field)
    return next((f for f in flags if f.startswith("--") and "_" not in f), flags[0])


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_fields(cfg):
    """Raise :class:`UserError` (one sentence naming the flag) when a field's value is not
    one of its ``choices``, breaks its ``check``, or is a number that is not finite."""
    for field in dataclasses.fields(cfg):
        value, meta = getattr(cfg, field.name), field.metadata
        if meta and meta.get("required") and value in (None, ""):
            raise UserError(f"{flag_of(type(cfg), field.name)} is required.")
        if value is None or not meta:
            continue
        flag = flag_of(type(cfg), field.name)
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if meta.get("choices") and item not in meta["choices"]:
                raise UserError(f"{flag} must be one of {', '.join(map(str, meta['choices']))}, "
                                f"not {item!r}.")
            if _is_number(item) and not math.isfinite(item):
                raise UserError(f"{flag} must be a finite number, got {item}.")
            if meta.get("check") is not None and _is_number(item) \
                    and not meta["check"].test(item):
                raise UserError(f"{flag} {meta['check'].words}, got {item}.")


def _type_of(field):
    hint = field.type
    if isinstance(hint, str):                       # from __future__ annotations
        hint = {"int": int, "float": float, "str": str, "bool": bool}.get(hint, str)
    args = [a for a in typing.get_args(hint) if a is not type(None)]   # Optional[X], List[X]
    return args[0] if args else hint


def build_parser(cls, description, parser=None):
    """An ``argparse.ArgumentParser`` (or ``parser``, extended) with one argument per field of
    ``cls`` that has ``cli`` set; defaults are the fields' own."""
    parser = parser or argparse.ArgumentParser(description=description)
    groups = {}
    for field in dataclasses.fields(cls):
        meta = field.metadata
        if not meta or not meta.get("cli", True):
            continue
        target = parser
        if meta.get("group"):
            target = groups.setdefault(meta["group"], parser.add_argument_group(meta["group"]))
        flags = _flags(field)
        positional = not flags[0].startswith("-")
        kw = dict(help=meta.get("help") or None)
        if not positional:
            kw["dest"] = field.name
        if meta.get("required") and not positional:
            kw["required"] = True
        default = field.default if field.default is not dataclasses.MISSING \
            else field.default_factory()
        kind = _type_of(field)
        if kind is bool:
            kw["action"] = "store_false" if default else "store_true"
        else:
            kw.update(type=kind, default=default, metavar=meta.get("metavar"))
            if meta.get("nargs"):
                kw["nargs"] = meta["nargs"]
            if meta.get("choices"):
                kw["choices"] = meta["choices"]
        target.add_argument(*flags, **kw)
        if kind is bool:
            parser.set_defaults(**{field.name: default})
    return parser


def parse_config(cls, parser, argv, **fixed):
    """Parse ``argv`` with ``parser`` into ``cls`` (keyword construction; namespace entries
    that are not fields are dropped), then ``cfg.check()`` when the class has one, else
    :func:`check_fields`. ``fixed`` sets fields the script decides itself."""
    ns = vars(parser.parse_args(argv))
    names = {f.name for f in dataclasses.fields(cls)}
    cfg = cls(**{k: v for k, v in ns.items() if k in names}, **fixed)
    (cfg.check if hasattr(cfg, "check") else lambda: check_fields(cfg))()
    return cfg
