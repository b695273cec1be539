"""backend='auto': the engine chosen for each kind of CPU, dtype and installation, against
choices worked out by hand from the measured figures (README "Speed against the authors'
model", /work/shared ENVIRONMENT.md, issue 22), and the rules that hold for every choice."""
import itertools

import mxnet as mx
import numpy as np
import pytest

from conftest import openvino_or_skip
from resnest.gluon import UserError, get_model
from resnest.gluon.inference import optimize
from resnest.gluon.inference.auto import FACTS, INT8_AGREEMENT, choose_engine, cpu_kind

# The flags of the three machines, as /proc/cpuinfo showed them (ENVIRONMENT.md).
ZEN3 = {"sse4_2", "avx", "avx2", "fma"}
ZEN4 = ZEN3 | {"avx512f", "avx512bw", "avx512vl", "avx512_vnni", "avx512_bf16"}
AMX = ZEN4 | {"amx_tile", "amx_bf16", "amx_int8", "avx512_fp16"}
SKYLAKE = ZEN3 | {"avx512f", "avx512bw", "avx512vl"}            # AVX-512, no bf16, no VNNI
ALL = ("mxnet", "onnxruntime", "openvino")


def test_cpu_kinds_from_flags():
    assert cpu_kind(ZEN3) == "avx2"
    assert cpu_kind(ZEN4) == "avx512_bf16"
    assert cpu_kind(AMX) == "amx"
    assert cpu_kind(SKYLAKE) == "avx2"
    assert cpu_kind({"sse4_2"}) is None


@pytest.mark.parametrize("flags, dtype, batch, installed, want", [
    # Zen 3 (docs/inference.md's run): batch 16, onnxruntime 1.49x > openvino 1.39x in float32;
    # int8 openvino 2.82x > onnxruntime 2.34x > mxnet 1.37x; batch 1, onnxruntime 2.44x >
    # openvino 2.35x in float32.
    (ZEN3, "float32", 16, ALL, "onnxruntime"),
    (ZEN3, "float32", 1, ALL, "onnxruntime"),
    (ZEN3, "int8", 16, ALL, "openvino"),
    (ZEN3, "int8", 16, ("mxnet", "onnxruntime"), "onnxruntime"),
    (ZEN3, "float32", 16, ("mxnet",), "mxnet"),                   # nothing else: MXNet
    (ZEN3, "int8", 16, ("mxnet",), "mxnet"),
    # Zen 4: openvino leads every dtype (1.37x / 1.55x alone at batch 1, bf16 2.76x / 4.00x,
    # int8 4.32x / 5.77x); without it onnxruntime leads float32 (1.27x > mxnet 1.17x) and
    # int8, and MXNet's bf16 is kept at batch 16 (1.56x > its float32 1.17x).
    (ZEN4, "float32", 16, ALL, "openvino"),
    (ZEN4, "float32", 1, ALL, "openvino"),
    (ZEN4, "bfloat16", 16, ALL, "openvino"),
    (ZEN4, "bfloat16", 1, ALL, "openvino"),
    (ZEN4, "int8", 1, ALL, "openvino"),
    (ZEN4, "float32", 16, ("mxnet", "onnxruntime"), "onnxruntime"),
    (ZEN4, "int8", 1, ("mxnet", "onnxruntime"), "onnxruntime"),
    (ZEN4, "bfloat16", 16, ("mxnet", "onnxruntime"), "mxnet"),
    (ZEN4, "int8", 1, ("mxnet",), "mxnet"),                       # 1.41x > its fp32 1.31x
    # AMX: openvino bf16 8.15x, int8 10.33x, float32 1.58x > mxnet 1.33x at batch 16; at
    # batch 1 only onnxruntime float32 was measured (1.57x).
    (AMX, "bfloat16", 16, ALL, "openvino"),
    (AMX, "int8", 16, ALL, "openvino"),
    (AMX, "float32", 16, ALL, "openvino"),
    (AMX, "float32", 1, ALL, "onnxruntime"),
    (AMX, "float32", 16, ("mxnet",), "mxnet"),
    # An AVX-512 CPU without bf16 is judged by the AVX2 machine's figures.
    (SKYLAKE, "int8", 16, ALL, "openvino"),
])
def test_choice_per_cpu_kind(flags, dtype, batch, installed, want):
    choice = choose_engine(dtype, batch, flags, installed)
    assert choice.backend == want, choice.reason
    assert choice.reason.startswith("auto: ")


def test_the_sentence_names_the_engine_figure_and_machine():
    choice = choose_engine("int8", 16, ZEN3, ALL)
    assert "int8" in choice.reason and "2.82x" in choice.reason
    assert "Zen 3" in choice.reason and "onnxruntime 2.34x" in choice.reason
    assert "99.54%" in choice.reason
    assert "judged by the figures of an AMD EPYC Zen 3" in \
        choose_engine("int8", 16, SKYLAKE, ALL).reason
    assert "no figure at batch 1" in choose_engine("int8", 1, AMX, ALL).reason


@pytest.mark.parametrize("flags, installed", [
    (ZEN3, ALL),                          # no bf16 instructions at all
    (SKYLAKE, ALL),
    (ZEN4, ("mxnet",)),                   # batch 1: MXNet bf16 0.55x < its float32 1.31x
    (AMX, ("mxnet", "onnxruntime")),      # MXNet bf16 0.85x < its float32 1.33x
])
def test_bfloat16_that_would_be_slow_is_refused(flags, installed):
    with pytest.raises(UserError, match="bfloat16"):
        choose_engine("bfloat16", 1, flags, installed)


def test_gpu_and_float16_run_mxnet():
    assert choose_engine("float32", 16, ZEN3, ALL, device="gpu").backend == "mxnet"
    assert choose_engine("float16", 16, ZEN3, ALL).backend == "mxnet"


def _every_case():
    subsets = [("mxnet",) + extra for n in range(3)
               for extra in itertools.combinations(("onnxruntime", "openvino"), n)]
    return itertools.product((ZEN3, ZEN4, AMX, SKYLAKE), ("float32", "bfloat16", "int8"),
                             (1, 16), subsets)


def test_no_engine_that_is_not_installed_is_ever_chosen():
    for flags, dtype, batch, installed in _every_case():
        try:
            choice = choose_engine(dtype, batch, flags, installed)
        except UserError:
            continue
        assert choice.backend in installed, (dtype, batch, installed)


def test_every_chosen_reduced_precision_path_is_not_slower_than_its_float32():
    table = {(f.cpu, f.backend, f.dtype, f.batch): f.speedup for f in FACTS}
    checked = 0
    for flags, dtype, batch, installed in _every_case():
        if dtype == "float32":
            continue
        try:
            choice = choose_engine(dtype, batch, flags, installed)
        except UserError:
            continue
        kind = cpu_kind(flags)
        rows = [(b, s) for (k, e, d, b), s in table.items()
                if (k, e, d) == (kind, choice.backend, dtype)]
        if not rows:                                  # the unmeasured MXNet fallback
            assert choice.backend == "mxnet" and "no installed engine was measured" in \
                choice.reason
            continue
        for b, speed in rows:
            if f"at batch {b} " in choice.reason:
                assert speed >= table[(kind, choice.backend, "float32", b)]
                checked += 1
        if dtype == "int8":
            assert INT8_AGREEMENT[choice.backend] >= 99.0
    assert checked >= 20


def test_optimize_auto_says_what_it_chose(monkeypatch):
    # Pretend only MXNet is installed, so the choice is the same on every machine.
    from resnest.gluon.inference import auto
    monkeypatch.setattr(auto, "installed_engines", lambda: ("mxnet",))
    net = get_model("resnest_tiny", classes=4)
    net.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(shape=(2, 3, 32, 32))
    want = net(x).asnumpy()
    fast = optimize(net, "float32", input_size=32, batch_size=2)
    assert fast.chosen_backend == "mxnet" and fast.backend_reason.startswith("auto: ")
    np.testing.assert_allclose(fast(x).asnumpy(), want, rtol=1e-4, atol=1e-5)
    asked = optimize(net, "float32", backend="mxnet", input_size=32, batch_size=2)
    assert (asked.chosen_backend, asked.backend_reason) == ("mxnet", "asked for")


def test_optimize_auto_takes_an_installed_onnx_engine():
    pytest.importorskip("onnxruntime")
    openvino_or_skip()
    from resnest.gluon.inference.auto import installed_engines
    from resnest.gluon.utils.cpu import cpu_flags
    choice = choose_engine("float32", 2)
    if choice.backend == "mxnet":
        pytest.skip(f"on this CPU auto keeps MXNet: {choice.reason}")
    assert choice.backend in installed_engines()
    net = get_model("resnest_tiny", classes=4)
    net.initialize(mx.init.Xavier())
    x = mx.nd.random.uniform(shape=(2, 3, 32, 32))
    want = net(x).asnumpy()
    fast = optimize(net, "float32", input_size=32, batch_size=2)
    assert fast.chosen_backend == fast.backend == choice.backend, cpu_flags()
    np.testing.assert_allclose(fast(x).asnumpy(), want, rtol=1e-4, atol=1e-4)
