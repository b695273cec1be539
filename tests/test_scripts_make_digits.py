"""scripts/dataset/make_digits.py: the embedded real data set, written once (a second run on a
complete folder does nothing, other settings are refused)."""
import os
import runpy

import numpy as np
import pytest

from conftest import REPO as ROOT
from resnest.gluon.utils.errors import UserError


def test_writes_the_stratified_split_once_and_refuses_other_settings(tmp_path, capsys):
    script = os.path.join(ROOT, 'scripts', 'dataset', 'make_digits.py')
    make = runpy.run_path(script)['main']
    out = str(tmp_path / 'digits')
    assert make([out]) == 0
    files = {split: sum(len(f) for _, _, f in os.walk(os.path.join(out, split)))
             for split in ('train', 'val')}
    # scikit-learn's own class counts, 20% of each (rounded) held out
    from sklearn.datasets import load_digits
    val = sum(int(round(0.2 * n)) for n in np.bincount(load_digits().target))
    assert files == {'train': 1797 - val, 'val': val} and val == 359
    per_class = {d: len(os.listdir(os.path.join(out, 'val', str(d)))) for d in range(10)}
    assert per_class == {d: int(round(0.2 * n))
                         for d, n in enumerate(np.bincount(load_digits().target))}
    assert make([out]) == 0 and 'already complete' in capsys.readouterr().out
    with pytest.raises(UserError, match='other settings'):
        make([out, '--size', '16'])
