"""``PREFIX.classes.txt``, the class names of a pack: line ``i`` names class ``i``.

The one module that writes and reads it. A name must fit on its line: no tab, no line break,
not empty, not padded with spaces, and no two classes share a name; anything else would shift
every later label or make the list ambiguous, so it is refused before anything is written.
"""
import os

from ..utils.errors import UserError
from ..utils.io import write_text

__all__ = ["classes_path", "name_problem", "check_names", "write_classes", "read_classes"]


def classes_path(prefix):
    """``PREFIX.classes.txt`` of a pack prefix or of its ``.rec``."""
    return (prefix[:-4] if prefix.endswith(".rec") else prefix) + ".classes.txt"


def name_problem(name):
    """Why ``name`` cannot be a class name (or a file path in a list), or None."""
    if not name:
        return "it is empty"
    for char, words in (("\t", "a tab"), ("\n", "a line break"), ("\r", "a carriage return")):
        if char in name:
            return f"it holds {words}"
    if name != name.strip():
        return "it starts or ends with spaces"
    return None


def check_names(names, where):
    """Refuse a class list with a name that cannot be written (see the module doc) or a name
    given twice, in one sentence naming ``where``."""
    seen = set()
    for i, name in enumerate(names):
        problem = name_problem(name)
        if problem:
            raise UserError(f"class {i} of {where}, {name!r}, cannot be a class name: {problem};"
                            " rename it.")
        if name in seen:
            raise UserError(f"class name {name!r} appears twice in {where}; class names must "
                            "be unique.")
        seen.add(name)


def write_classes(prefix, names):
    """Write ``PREFIX.classes.txt`` (atomically), after :func:`check_names`."""
    check_names(names, classes_path(prefix))
    write_text(classes_path(prefix), "".join(f"{name}\n" for name in names))


def read_classes(prefix):
    """The class names of ``PREFIX.classes.txt``, or None when there is none; a file whose
    lines are not valid names is refused."""
    path = classes_path(prefix)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            names = f.read().split("\n")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read {path} ({err}).") from None
    if names and names[-1] == "":
        names.pop()
    check_names(names, path)
    return names
