"""``backend='auto'``: for a dtype and this CPU, the fastest inference engine that is installed
and meets the dtype's accuracy rule, decided from a table of measured facts (nothing is timed
at start-up), with one sentence saying why.

The facts are ResNeSt-50 at 224, each engine's speed-up over the authors' published Gluon model
(plain hybridized float32) measured side by side with it in one run, per kind of CPU:

==============  =================================================  ============================
kind            what it needs in ``/proc/cpuinfo``                 measured on
==============  =================================================  ============================
``avx2``        avx2                                               AMD EPYC Zen 3 (AVX2 only)
``avx512_bf16`` avx2, avx512f, avx512_bf16 (+ VNNI)                AMD EPYC Zen 4
``amx``         the above and amx_bf16, amx_int8                   Intel Xeon with AMX
==============  =================================================  ============================

A CPU takes the richest kind whose flags it has (an AVX-512 CPU without bf16 is judged by the
AVX2 figures, and the sentence says so). The rules:

- an engine that is not installed is never chosen;
- int8: only engines whose measured top-1 agreement with float32 is at least 99%
  (:data:`INT8_AGREEMENT`);
- bfloat16: only on a CPU with bf16 instructions, and never a path measured slower than the
  same engine's float32 (MXNet's own bfloat16 was slower than its float32 on the AMX Xeon and
  at batch 1 on Zen 4; docs/bf16.md);
- the batch size picks the figures at batch 1 (<= 4) or batch 16, or the other when there are
  none; with no figure for any installed engine, MXNet (always installed) runs, and says so.
"""
import importlib.util
from dataclasses import dataclass

from ..utils.cpu import cpu_flags
from ..utils.errors import UserError

__all__ = ["Fact", "FACTS", "INT8_AGREEMENT", "INT8_MIN_AGREEMENT", "CPU_KINDS", "Choice",
           "cpu_kind", "installed_engines", "choose_engine"]

_ZEN3 = ("docs/inference.md: AMD EPYC Zen 3 (family 25 model 1, AVX2 only), one interleaved run "
         "of the benchmark command, 2026-12-03")
_ZEN4 = "docs/inference.md 'Speed against the authors' model': AMD EPYC Zen 4, one interleaved run"
_ZEN4_ALONE = "docs/inference.md: AMD EPYC Zen 4, one engine per process, batch 1"
_AMX_ISSUE = ("issue 22: Intel Xeon with AMX, the benchmark command of docs/inference.md, "
              "authors 18.0 img/s")
_AMX_ENV = "ENVIRONMENT.md: Intel Xeon with AMX, run of 2026-12-03"


@dataclass(frozen=True)
class Fact:
    """One measured speed-up of ResNeSt-50 at 224 over the authors' float32 model."""

    cpu: str           # a key of CPU_KINDS
    backend: str
    dtype: str
    batch: int         # 1 or 16
    speedup: float     # authors' median / ours, same run
    source: str


FACTS = (
    Fact("avx2", "mxnet", "float32", 16, 1.13, _ZEN3),
    Fact("avx2", "mxnet", "int8", 16, 1.37, _ZEN3),
    Fact("avx2", "onnxruntime", "float32", 16, 1.49, _ZEN3),
    Fact("avx2", "onnxruntime", "int8", 16, 2.34, _ZEN3),
    Fact("avx2", "openvino", "float32", 16, 1.39, _ZEN3),
    Fact("avx2", "openvino", "int8", 16, 2.82, _ZEN3),
    Fact("avx2", "mxnet", "float32", 1, 1.22, _ZEN3),
    Fact("avx2", "mxnet", "int8", 1, 1.34, _ZEN3),
    Fact("avx2", "onnxruntime", "float32", 1, 2.44, _ZEN3),
    Fact("avx2", "onnxruntime", "int8", 1, 3.48, _ZEN3),
    Fact("avx2", "openvino", "float32", 1, 2.35, _ZEN3),
    Fact("avx2", "openvino", "int8", 1, 4.03, _ZEN3),
    Fact("avx512_bf16", "mxnet", "float32", 16, 1.17, _ZEN4),
    Fact("avx512_bf16", "mxnet", "bfloat16", 16, 1.56, _ZEN4),
    Fact("avx512_bf16", "mxnet", "int8", 16, 1.57, _ZEN4),
    Fact("avx512_bf16", "onnxruntime", "float32", 16, 1.27, _ZEN4),
    Fact("avx512_bf16", "onnxruntime", "int8", 16, 3.29, _ZEN4),
    Fact("avx512_bf16", "openvino", "float32", 16, 1.37, _ZEN4),
    Fact("avx512_bf16", "openvino", "bfloat16", 16, 2.76, _ZEN4),
    Fact("avx512_bf16", "openvino", "int8", 16, 4.32, _ZEN4),
    Fact("avx512_bf16", "mxnet", "float32", 1, 1.31, _ZEN4_ALONE),
    Fact("avx512_bf16", "onnxruntime", "float32", 1, 1.35, _ZEN4_ALONE),
    Fact("avx512_bf16", "openvino", "float32", 1, 1.55, _ZEN4_ALONE),
    Fact("avx512_bf16", "mxnet", "bfloat16", 1, 0.55, _ZEN4),
    Fact("avx512_bf16", "mxnet", "int8", 1, 1.41, _ZEN4),
    Fact("avx512_bf16", "onnxruntime", "int8", 1, 4.27, _ZEN4),
    Fact("avx512_bf16", "openvino", "bfloat16", 1, 4.00, _ZEN4),
    Fact("avx512_bf16", "openvino", "int8", 1, 5.77, _ZEN4),
    Fact("amx", "mxnet", "float32", 16, 1.33, _AMX_ISSUE),
    Fact("amx", "mxnet", "bfloat16", 16, 0.85, _AMX_ISSUE),
    Fact("amx", "openvino", "bfloat16", 16, 8.15, _AMX_ISSUE),
    Fact("amx", "openvino", "int8", 16, 10.33, _AMX_ISSUE),
    Fact("amx", "openvino", "float32", 16, 1.58, _AMX_ENV),
    Fact("amx", "onnxruntime", "float32", 1, 1.57, _AMX_ENV),
)

# Measured top-1 agreement (%) of each engine's default int8 with its float32, on 2,380
# held-out real photo patches (docs/inference.md "int8 you can trust", Zen 4);
# tests/test_inference_quantize.py holds every machine the suite runs on to >= 99%.
INT8_AGREEMENT = {"mxnet": 99.58, "onnxruntime": 99.66, "openvino": 99.54}
INT8_MIN_AGREEMENT = 99.0

# Kind -> (flags it needs, the machine its figures were measured on), richest first.
CPU_KINDS = {
    "amx": (frozenset({"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_int8"}),
            "an Intel Xeon with AMX"),
    "avx512_bf16": (frozenset({"avx2", "avx512f", "avx512_bf16"}), "an AMD EPYC Zen 4"),
    "avx2": (frozenset({"avx2"}), "an AMD EPYC Zen 3"),
}
_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
_KIND_FLAGS = frozenset().union(*(needs for needs, _ in CPU_KINDS.values()))


@dataclass(frozen=True)
class Choice:
    """The engine ``auto`` picked and the sentence that says why."""

    backend: str
    reason: str


def cpu_kind(flags):
    """The richest key of :data:`CPU_KINDS` whose flags ``flags`` has, or None (no AVX2)."""
    for kind, (needs, _) in CPU_KINDS.items():
        if needs <= set(flags):
            return kind
    return None


def installed_engines():
    """The engines this installation can run: MXNet always; onnxruntime and OpenVINO when
    importable together with onnx (they run our ONNX export)."""
    found = ["mxnet"]
    if importlib.util.find_spec("onnx") is not None:
        found += [m for m in ("onnxruntime", "openvino") if importlib.util.find_spec(m)]
    return tuple(found)


def _figures(kind, backend, dtype, batch):
    return [f for f in FACTS if (f.cpu, f.backend, f.dtype, f.batch) == (kind, backend, dtype,
                                                                          batch)]


def _candidates(kind, dtype, batch, installed):
    """``[(fact, float32 fact or None)]`` of the installed engines that pass the rules."""
    out = []
    for backend in installed:
        if dtype == "int8" and INT8_AGREEMENT.get(backend, 0.0) < INT8_MIN_AGREEMENT:
            continue
        for fact in _figures(kind, backend, dtype, batch):
            base = (_figures(kind, backend, "float32", batch) or [None])[0]
            if dtype != "float32" and (base is None or fact.speedup < base.speedup):
                continue                         # never slower than this engine's float32
            out.append((fact, base))
    return out


def _sentence(fact, base, kind, dtype, others, flags, note):
    isa = "/".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags)
    text = (f"auto: the fastest installed engine for {dtype} on this CPU ({isa or 'no AVX2'}): "
            f"measured {fact.speedup:.2f}x the authors' float32 at batch {fact.batch} on "
            f"{CPU_KINDS[kind][1]}")
    if base is not None and dtype != "float32":
        text += f" ({fact.backend} float32: {base.speedup:.2f}x)"
    if others:
        text += "; " + ", ".join(f"{f.backend} {f.speedup:.2f}x" for f in others)
    if dtype == "int8":
        text += f"; int8 top-1 agreement {INT8_AGREEMENT[fact.backend]:.2f}%"
    return text + (f" ({note})" if note else "")


def choose_engine(dtype, batch_size=16, flags=None, installed=None, device="cpu"):
    """The engine ``optimize(..., backend='auto')`` runs.

    Parameters
    ----------
    dtype : {'float32', 'bfloat16', 'int8', 'float16'}
    batch_size : int
        Batches of at most 4 take the batch-1 figures, larger ones the batch-16 figures.
    flags : set of str, optional
        The CPU's ISA flags (default: this machine's, from ``/proc/cpuinfo``).
    installed : sequence of str, optional
        The engines that can run (default :func:`installed_engines`).
    device : {'cpu', 'gpu'}

    Returns
    -------
    Choice

    Raises
    ------
    UserError
        bfloat16 on a CPU without bf16 instructions, or where every installed engine's
        bfloat16 is measured slower than its float32.
    """
    if device != "cpu" or dtype == "float16":
        return Choice("mxnet", "auto: MXNet, the only engine here that runs on a GPU")
    flags = cpu_flags() if flags is None else frozenset(flags)
    installed = installed_engines() if installed is None else tuple(installed)
    if dtype == "bfloat16" and not any(f in flags for f in _BF16_FLAGS):
        raise UserError("this CPU has no bfloat16 instructions (avx512_bf16 or AMX), so no "
                        "engine runs bfloat16 fast here; use float32 or int8.")
    kind = cpu_kind(flags)
    if kind is None:
        return Choice("mxnet", "auto: no engine was measured on a CPU without AVX2; MXNet, "
                               "which every installation has")
    richer = (flags & _KIND_FLAGS) - CPU_KINDS[kind][0]      # e.g. AVX-512 without bf16
    note = f"judged by the figures of {CPU_KINDS[kind][1]}" if richer else ""
    first = 1 if batch_size <= 4 else 16
    batch = first
    if not any(_figures(kind, b, dtype, first) for b in installed):
        batch = 16 if first == 1 else 1                    # nothing measured at this size
        note = "; ".join(filter(None, [note, f"no figure at batch {first}"]))
    found = sorted(_candidates(kind, dtype, batch, installed), key=lambda p: -p[0].speedup)
    if found:
        fact, base = found[0]
        return Choice(fact.backend, _sentence(fact, base, kind, dtype, [f for f, _ in found[1:]],
                                              flags, note))
    if dtype == "bfloat16":
        raise UserError("every installed engine's bfloat16 was measured slower than its "
                        f"float32 on {CPU_KINDS[kind][1]} (docs/bf16.md); install OpenVINO "
                        "(pip install resnest[deploy]), use float32, or pass backend='mxnet' "
                        "to run MXNet's bfloat16 anyway.")
    return Choice("mxnet", f"auto: no installed engine was measured for {dtype} on "
                           f"{CPU_KINDS[kind][1]}; MXNet, which every installation has")
