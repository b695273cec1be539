"""Same weights, same logits: ours against the authors' published Gluon code (resnest 0.0.5)
and GluonCV's copy (the only published Gluon resnest14/26), imperative and hybridized."""
import mxnet as mx
import numpy as np
import pytest

from conftest import authors_package, randomize_bn
from resnest.gluon import get_model
from tools import reference

AUTHORS = ["resnest50", "resnest101", "resnest50_fast_1s1x64d", "resnest50_fast_2s1x64d",
           "resnest50_fast_4s1x64d", "resnest50_fast_1s2x40d", "resnest50_fast_2s2x40d",
           "resnest50_fast_4s2x40d", "resnest50_fast_1s4x24d",
           pytest.param("resnest200", marks=pytest.mark.slow),
           pytest.param("resnest269", marks=pytest.mark.slow)]


def _same_logits(theirs, ours, size=64):
    theirs.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(-2, 2, shape=(2, 3, size, size))
    randomize_bn(theirs, x)
    ours.initialize()
    ours(x)
    reference.copy_weights(theirs, ours)
    for hybrid in (False, True):
        if hybrid:
            theirs.hybridize()
            ours.hybridize()
        want, got = theirs(x).asnumpy(), ours(x).asnumpy()
        assert np.abs(want).max() > 0.1                       # not a degenerate comparison
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
        assert (got.argmax(1) == want.argmax(1)).all()


@pytest.mark.parametrize("name", AUTHORS)
def test_same_logits_as_authors(name):
    authors_package()
    _same_logits(reference.authors_model(name), get_model(name))


@pytest.mark.parametrize("name", ["resnest14", "resnest26"])
def test_same_logits_as_gluoncv(name):
    _same_logits(reference.gluoncv_model(name), get_model(name))


@pytest.mark.parametrize("required, outcome", [("1", "failed"), ("", "skipped")])
def test_a_missing_reference_fails_under_make_test_and_skips_otherwise(tmp_path, required,
                                                                       outcome):
    """`make test` sets RESNEST_REQUIRE_REFERENCE=1: a comparison with the authors' code that
    cannot run fails there; a bare pytest skips it and prints the reason."""
    import os
    import subprocess
    import sys
    from conftest import REPO
    env = dict(os.environ, RESNEST_AUTHORS_DIR=str(tmp_path / "nothing"),
               RESNEST_REQUIRE_REFERENCE=required)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
                           os.path.join(REPO, "tests", "test_tools_reference.py") +
                           "::test_same_logits_as_authors[resnest50]"],
                          env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert f"1 {outcome}" in proc.stdout, proc.stdout[-2000:]
    assert "not unpacked" in proc.stdout
