"""OpenVINO (:mod:`resnest.gluon.inference.openvino`): bfloat16 runs in bf16 where the CPU can
and returns float32, and is refused in one sentence where it cannot."""
import numpy as np
import pytest

from _errors import one_sentence
from resnest.gluon import UserError
from resnest.gluon.inference import optimize

pytest.importorskip("openvino")


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
