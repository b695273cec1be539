"""Image lists: MXNet's ``.lst`` files, class-name files, and building both from a folder tree."""
import os
import random
from dataclasses import dataclass

from ..utils.errors import UserError
from ..utils.io import write_text
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
                entries.append(ListEntry(int(fields[0]),
                                         tuple(float(v) for v in fields[1:-1]), fields[-1]))
            except ValueError:
                raise UserError(f'line {number} of {lst_path} is not "index<TAB>label<TAB>path"'
                                '; MXNet .lst files use tabs') from None
    return entries


def write_lst(lst_path, entries):
    """Write ``entries`` as an MXNet ``.lst`` file, atomically."""
    write_text(lst_path, ''.join(lst_line(e) for e in entries))


def write_classes(path, classes):
    """``PREFIX.classes.txt``: line ``i`` is the name of class ``i``."""
    write_text(path, ''.join(f'{name}\n' for name in classes))


def read_classes(path):
    """Class names from a ``classes.txt`` file, or None if there is none."""
    if not os.path.isfile(path):
        return None
    with open(path, encoding='utf-8') as fcls:
        return [line.rstrip('\n') for line in fcls if line.strip()]
