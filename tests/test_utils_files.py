"""Only regular files are read, without ever blocking, and a tree of any depth is walked
(:mod:`resnest.gluon.utils.files`)."""
import os

import pytest

from resnest.gluon.utils.files import NotRegular, read_regular, walk_files


def test_a_fifo_is_refused_at_once_instead_of_blocking(tmp_path):
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    with pytest.raises(NotRegular, match="not a regular file \\(a FIFO\\)"):
        read_regular(str(fifo))
    with pytest.raises(NotRegular, match="a folder"):
        read_regular(str(tmp_path))
    (tmp_path / "a.bin").write_bytes(b"\x00" * (5 << 20))
    assert read_regular(str(tmp_path / "a.bin")) == b"\x00" * (5 << 20)


def test_a_tree_deeper_than_the_recursion_limit_is_walked(tmp_path):
    """1100 levels: os.walk in Python 3.11 recurses and would stop with a RecursionError."""
    deep = tmp_path
    for _ in range(1100):                  # os.makedirs itself recurses: one level at a time
        deep = deep / "d"
        os.mkdir(deep)
    (deep / "bottom.jpg").write_bytes(b"x")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / ".hidden" / "no.jpg").write_bytes(b"x")
    try:
        found = [os.path.join(rel, f) for rel, files in walk_files(str(tmp_path))
                 for f in files]
        assert found == [os.path.join(*(["d"] * 1100), "bottom.jpg")]
    finally:                               # pytest's own clean-up recurses: remove it here
        os.remove(deep / "bottom.jpg")
        while deep != tmp_path:
            os.rmdir(deep)
            deep = deep.parent
