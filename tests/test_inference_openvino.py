"""OpenVINO (:mod:`resnest.gluon.inference.openvino`): bfloat16 runs in bf16 where the CPU can
and returns float32, and is refused in one sentence where it cannot."""
import os
import subprocess
import sys

import numpy as np
import pytest

from _errors import one_sentence
from conftest import openvino_or_skip
from resnest.gluon import UserError
from resnest.gluon.inference import optimize

openvino_or_skip()


def _ov_bf16():
    try:
        from resnest.gluon.inference.openvino import bfloat16_supported
        return bfloat16_supported()
    except UserError:
        return False


@pytest.mark.skipif(not _ov_bf16(), reason="OpenVINO reports no bf16 on this CPU (it needs "
                    "avx512_bf16 or AMX)")
def test_openvino_bfloat16_runs_bf16_and_returns_float32(random_tiny):
    from resnest.gluon.inference.openvino import runtime_precisions
    net, x, ref = random_tiny
    fast = optimize(net, "bfloat16", backend="openvino", input_size=32, batch_size=4)
    out = fast(x).asnumpy()
    assert out.dtype == np.float32
    # bfloat16 keeps 8 bits of mantissa: about 2-3 significant digits
    np.testing.assert_allclose(out, ref, atol=0.05 * np.abs(ref).max())
    assert "bf16" in set(runtime_precisions(fast, 4).values())


def test_openvino_bfloat16_refused_where_the_cpu_cannot(random_tiny, monkeypatch):
    from resnest.gluon.inference import openvino
    monkeypatch.setattr(openvino, "bfloat16_supported", lambda: False)
    with pytest.raises(UserError, match="cannot run bfloat16 on this CPU") as err:
        optimize(random_tiny[0], "bfloat16", backend="openvino", input_size=32, batch_size=4)
    one_sentence(err)


_FORKS = r"""
import os, sys
forks = []
os.register_at_fork(before=lambda: forks.append(1))
if sys.argv[1] == "plain":
    import openvino  # noqa: F401
else:
    from resnest.gluon.inference.openvino import import_openvino
    import_openvino()
from openvino_telemetry import Telemetry
Telemetry().sender.executor.shutdown(wait=True)         # whatever it sends, sent by now
print(len(forks), Telemetry().consent, os.environ.get("CI"))
"""


def _forks_on_import(mode, home):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["HOME"] = str(home)
    done = subprocess.run([sys.executable, "-c", _FORKS, mode], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_importing_openvino_forks_no_telemetry_process(tmp_path):
    # OpenVINO's own behaviour: with no consent file (a fresh HOME) and not in CI, a plain
    # import sends an event from a thread pool in a forked process, and writes its files
    plain, ours = tmp_path / "plain", tmp_path / "ours"
    plain.mkdir()
    ours.mkdir()
    forks, consent, ci = _forks_on_import("plain", plain)
    assert int(forks) >= 1 and consent == "True" and os.listdir(plain)
    # through import_openvino: no fork, no consent, nothing written, CI not left set
    assert _forks_on_import("ours", ours) == ["0", "False", "None"]
    assert os.listdir(ours) == []
