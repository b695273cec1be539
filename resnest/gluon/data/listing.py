"""Image lists: MXNet's ``.lst`` files (the one module that writes and reads them), and the
list of a class-folder tree. A list admits only what it can hold exactly: record keys are whole
numbers >= 0, labels finite numbers, paths without tabs or line breaks."""
import os
import random
from dataclasses import dataclass

import math

from ..utils.errors import UserError
from ..utils.io import write_text
from .classfile import name_problem
from .folder import scan_class_folders


@dataclass(frozen=True)
class ListEntry:
    """One line of a ``.lst`` file: record key, label(s), path relative to the image root."""
    index: int
    labels: tuple
    path: str


def lst_line(entry):
    """``index<TAB>label[<TAB>label...]<TAB>path`` as MXNet's im2rec writes it."""
    labels = '\t'.join(f'{float(v):f}' for v in entry.labels)
    return f'{entry.index}\t{labels}\t{entry.path}\n'


def list_folder(image_dir, shuffle=False, seed=0):
    """Entries for every image under ``image_dir/<class>/``, keys numbered in output order.

    Parameters
    ----------
    image_dir : str
    shuffle : bool
        Shuffle the order with ``random.Random(seed)`` before numbering (as MXNet's im2rec).
    seed : int

    Returns
    -------
    classes : list of str
    entries : list of ListEntry

    Raises
    ------
    UserError
        ``image_dir`` missing, without class sub-folders, or without images.
    """
    if not os.path.isdir(image_dir):
        raise UserError(f'image folder {image_dir} does not exist; give a folder of class '
                        'sub-folders')
    classes, items = scan_class_folders(image_dir)
    if not items:
        raise UserError(f'no images found under {image_dir}/<class>/; the images must be in '
                        'one sub-folder per class')
    if shuffle:
        random.Random(seed).shuffle(items)
    entries = [ListEntry(i, (float(label),), path) for i, (path, label) in enumerate(items)]
    return classes, entries


def read_lst(lst_path):
    """Entries of an MXNet ``.lst`` file (``index<TAB>label...<TAB>path``).

    Raises
    ------
    UserError
        A missing file or a malformed line (named by number).
    """
    if not os.path.isfile(lst_path):
        raise UserError(f'list file {lst_path} does not exist')
    entries = []
    with open(lst_path, encoding='utf-8') as flst:
        for number, line in enumerate(flst, 1):
            fields = line.rstrip('\n').split('\t')
            if not line.strip():
                continue
            try:
                if len(fields) < 3:
                    raise ValueError
                entry = ListEntry(int(fields[0]), tuple(float(v) for v in fields[1:-1]),
                                  fields[-1])
            except ValueError:
                raise UserError(f'line {number} of {lst_path} is not "index<TAB>label<TAB>path"'
                                '; MXNet .lst files use tabs') from None
            problem = (f'the index {entry.index} is negative' if entry.index < 0 else
                       'a label is not a finite number' if not all(map(math.isfinite,
                                                                       entry.labels)) else
                       'the path is empty' if not entry.path.strip() else None)
            if problem:
                raise UserError(f'line {number} of {lst_path} cannot be packed: {problem}.')
            entries.append(entry)
    return entries


def write_lst(lst_path, entries):
    """Write ``entries`` as an MXNet ``.lst`` file, atomically (a path that cannot be listed,
    with a tab or a line break, is refused)."""
    for entry in entries:
        problem = name_problem(entry.path)
        if problem:
            raise UserError(f'{entry.path!r} cannot be written to {lst_path}: {problem}; '
                            'rename the file.')
    write_text(lst_path, ''.join(lst_line(e) for e in entries))
