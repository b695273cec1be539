"""Class folders packed once (:mod:`resnest.gluon.data.packcache`): reused while the folder is
unchanged, packed again when it changes, and a user's own ``<folder>.rec`` never replaced."""
import os
import shutil

import pytest

from conftest import digits_subset
from resnest.gluon.data import rec_info
from resnest.gluon.data.packcache import cached_pack
from resnest.gluon.utils.errors import UserError


@pytest.fixture
def folder(digits, tmp_path):
    """The first 20 training images of the digits 5-9, copied from the shared digits."""
    digits_subset(digits, tmp_path / "d", classes=range(5, 10), train_per_class=20,
                  val_per_class=0)
    shutil.move(tmp_path / "d" / "train", tmp_path / "train")
    return tmp_path / "train"


def test_class_folders_are_packed_once_and_again_when_they_change(folder):
    logs = []
    rec = cached_pack(str(folder), shuffle=True, log=logs.append)
    assert rec == str(folder) + ".rec" and rec_info(rec).num_samples == 100 and len(logs) == 1
    stamp = os.stat(rec).st_mtime_ns
    assert cached_pack(str(folder), shuffle=True, log=logs.append) == rec
    assert len(logs) == 1 and os.stat(rec).st_mtime_ns == stamp       # reused, not repacked
    shutil.copy(folder / "5" / sorted(os.listdir(folder / "5"))[0], folder / "5" / "extra.jpg")
    cached_pack(str(folder), shuffle=True, log=logs.append)
    assert len(logs) == 2 and rec_info(rec).num_samples == 101
    assert rec_info(rec).class_names == ["5", "6", "7", "8", "9"]


def test_a_users_own_pack_beside_the_folder_is_never_replaced(folder):
    """A data/train.rec the user packed (no description of ours) stays byte for byte."""
    own = str(folder) + ".rec"
    with open(own, "wb") as f:
        f.write(b"the user's records")
    with pytest.raises(UserError, match="was not packed from .* by this project's cache"):
        cached_pack(str(folder), shuffle=True, log=lambda m: None)
    assert open(own, "rb").read() == b"the user's records"


def test_a_group_swapped_under_the_description_is_packed_again(folder, tmp_path):
    """The description records the group it describes: another pack's .rec/.idx/.classes.txt
    put beside an intact .pack.json are not taken as the folder's pack."""
    rec = cached_pack(str(folder), shuffle=True, log=lambda m: None)
    other = tmp_path / "other"
    os.makedirs(other / "5")
    shutil.copy(folder / "5" / sorted(os.listdir(folder / "5"))[0], other / "5" / "a.jpg")
    other_rec = cached_pack(str(other), shuffle=True, log=lambda m: None)
    for suffix in (".rec", ".idx", ".classes.txt"):
        shutil.copy2(other_rec[:-4] + suffix, rec[:-4] + suffix)
    assert rec_info(rec).num_samples == 1
    logs = []
    assert cached_pack(str(folder), shuffle=True, log=logs.append) == rec
    assert len(logs) == 1 and rec_info(rec).num_samples == 100
    assert rec_info(rec).class_names == ["5", "6", "7", "8", "9"]
